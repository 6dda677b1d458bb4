// Command mkimage writes the project's Docker images as docker-save archives,
// without a Docker daemon (see package internal/images):
//
//	go run ./internal/images/cmd/mkimage workloads -o bin/images/minibroker-workloads.tar
//	go run ./internal/images/cmd/mkimage kafka -o bin/images/minibroker-kafka.tar
//	go run ./internal/images/cmd/mkimage inspect bin/images/*.tar
//
// `docker load -i FILE` then loads the image under its tag (-tag, default
// minibroker/workloads:dev or minibroker/kafka:dev).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/minibroker/terraform-provider-minibroker/internal/images"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, `usage: mkimage workloads|kafka -o FILE [-tag T] [flags]
       mkimage inspect FILE...

  workloads  static (musl) minibroker at /minibroker; needs musl-gcc
  kafka      jlink'd JRE + glibc + busybox + Kafka jars; needs a JDK with jmods,
             busybox-static and the jars of "make kafka"
  inspect    print each archive's tags and image ID

Run "mkimage workloads -h" or "mkimage kafka -h" for the flags.`)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	logger := log.New(stderr, "", log.Ltime)
	fs := flag.NewFlagSet("mkimage "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "archive to write (required)")
	tag := fs.String("tag", "", "repository:tag to load the image as (default minibroker/<image>:dev)")
	quiet := fs.Bool("q", false, "no progress messages")
	var jdk, libs, busybox, modules *string
	switch args[0] {
	case "workloads":
	case "kafka":
		jdk = fs.String("jdk", "", "JDK home with jlink and jmods (default /usr/lib/jvm/java-17-openjdk-amd64, else $JAVA_HOME)")
		libs = fs.String("libs", "", "directory of the Kafka jars (default $MINIBROKER_KAFKA_LIBS, else .cache/kafka/libs)")
		busybox = fs.String("busybox", "", "static busybox (default /bin/busybox, else /usr/bin/busybox)")
		modules = fs.String("modules", strings.Join(images.DefaultJREModules, ","), "JDK modules of the JRE")
	case "inspect":
		return inspect(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "mkimage: unknown image %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *out == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mkimage %s: -o FILE is required and there are no other arguments\n", args[0])
		return 2
	}
	var logf images.Logf
	if !*quiet {
		logf = logger.Printf
	}

	var res images.Result
	var err error
	switch args[0] {
	case "workloads":
		res, err = images.BuildWorkloads(ctx, images.WorkloadsOptions{Tag: *tag, Logf: logf}, *out)
	case "kafka":
		res, err = images.BuildKafka(ctx, images.KafkaOptions{Tag: *tag, JDK: *jdk, Libs: *libs, Busybox: *busybox,
			Modules: strings.Split(*modules, ","), Logf: logf}, *out)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mkimage %s: %v\n", args[0], err)
		return 1
	}
	fmt.Fprintln(stdout, res)
	return 0
}

func inspect(files []string, stdout, stderr io.Writer) int {
	if len(files) == 0 {
		fmt.Fprintln(stderr, "mkimage inspect: no archive named")
		return 2
	}
	rc := 0
	for _, f := range files {
		imgs, err := images.ReadArchiveFile(f)
		if err != nil {
			fmt.Fprintf(stderr, "mkimage inspect: %v\n", err)
			rc = 1
			continue
		}
		for _, img := range imgs {
			fmt.Fprintf(stdout, "%s %s %s\n", f, img.ID, strings.Join(img.RepoTags, ","))
		}
	}
	return rc
}
