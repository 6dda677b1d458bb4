package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/workloads/registry"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry/service"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// registryShutdown bounds how long the registry waits for requests in
// flight when it is stopped.
const registryShutdown = 10 * time.Second

// runRegistry serves the Confluent Schema Registry API over the registry's
// Kafka topic (package registry).
func runRegistry(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("registry", flag.ContinueOnError)
	bootstrap := fs.String("bootstrap", "localhost:9092", "Kafka bootstrap servers of the cluster that keeps the registry's topic")
	topic := fs.String("topic", stream.SchemasTopic, "compacted topic that holds the schemas (Confluent's _schemas record format)")
	listen := fs.String("listen", fmt.Sprintf(":%d", registry.DefaultPort), "address to serve the API on")
	cert := fs.String("tls-cert", "", "PEM certificate (chain) to serve HTTPS with; with --tls-key")
	key := fs.String("tls-key", "", "PEM private key of --tls-cert")
	usersFile := fs.String("users", "", `JSON users file, [{"name":..., "password":..., "role":"read"|"write"}]; without it anyone may read and register`)
	var conn settingsFlags
	conn.register(fs)
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if (*cert == "") != (*key == "") {
		return usagef("registry: --tls-cert and --tls-key go together")
	}
	var users []registry.User
	if *usersFile != "" {
		data, err := os.ReadFile(*usersFile)
		if err != nil {
			return fmt.Errorf("registry users: %w", err)
		}
		if users, err = registry.ParseUsers(data); err != nil {
			return usageError{err}
		}
	}
	settings, err := conn.overrides()
	if err != nil {
		return err
	}
	store, err := service.Open(ctx, *bootstrap, settings, *topic, log)
	if err != nil {
		return err
	}
	defer store.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	srv := &http.Server{
		Handler:           service.NewServer(store, users, log),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	served := make(chan error, 1)
	go func() {
		if *cert != "" {
			served <- srv.ServeTLS(ln, *cert, *key)
		} else {
			served <- srv.Serve(ln)
		}
	}()
	log.Info("schema registry serving", "address", ln.Addr().String(), "tls", *cert != "", "users", len(users), "topic", *topic, "bootstrap", *bootstrap)
	select {
	case err := <-served:
		return fmt.Errorf("registry: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), registryShutdown)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("registry shutdown: %w", err)
	}
	return nil
}
