// Command minibroker runs the workloads of the alert mini-broker: the alert
// producer, filters, consumers, the timing report, and the whole pipeline in
// one process for a local demo. Run `minibroker help` for the subcommands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
)

// command is one subcommand.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error
}

var commands = []command{
	{"produce", "send visits of alerts to a topic", runProduce},
	{"ingest", "copy an upstream alert stream into the hub, exactly once, importing its schemas", runIngest},
	{"filter", "filter the full stream with CEL expressions (or --dry-run over Avro files)", runFilter},
	{"consume", "read a filtered stream and record when each alert arrives", runConsume},
	{"report", "print the timing report from the timing topic", runReport},
	{"registry", "serve the Confluent Schema Registry API over the schemas topic", runRegistry},
	{"admin", "create and remove users and ACLs as an access plan says", runAdmin},
	{"local", "run the whole mini-broker in one process and print the report", runLocal},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a subcommand and returns the process exit code:
// 0 success, 1 failure, 2 bad usage.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel()}))
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, log)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, new(usageError)):
			fmt.Fprintf(stderr, "minibroker %s: %v\n", c.name, err)
			var ce *filter.CompileError
			if errors.As(err, &ce) && ce.Snippet != "" {
				fmt.Fprintln(stderr, ce.Snippet)
			}
			return 2
		default:
			fmt.Fprintf(stderr, "minibroker %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "minibroker: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: minibroker <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun `minibroker <command> -h` for a command's flags. MINIBROKER_LOG=debug|info|warn|error sets the log level.")
}

func logLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(os.Getenv("MINIBROKER_LOG"))); err != nil {
		return slog.LevelInfo
	}
	return l
}

// usageError marks errors in the command line, which exit with code 2.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// parse parses flags, turning flag errors into usage errors. -h prints the
// flags to stdout.
func parse(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fmt.Fprintf(stdout, "usage: minibroker %s [flags]\n", fs.Name())
			fs.PrintDefaults()
			return err
		}
		return usageError{err}
	}
	return nil
}

// strings is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return fmt.Sprint(*s) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
