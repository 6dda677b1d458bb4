package main

import (
	"context"
	"flag"
	"io"
	"log/slog"

	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/pipeline"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

func runIngest(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	var k kafkaFlags
	k.register(fs)
	topic := fs.String("topic", stream.AlertsTopic, "hub topic the upstream alerts are copied to")
	partitions := fs.Int("partitions", stream.DefaultPartitions, "partitions of the hub topic, when it is created")
	schemas := fs.String("schemas-topic", stream.SchemasTopic, "compacted topic of the schema registry, written directly when --registry is not given")
	registryFile := fs.String("registry", "", "our schema registry, where each upstream schema is registered under its upstream id: a properties file with "+
		registry.SettingURL+", "+registry.SettingUserInfo+" and "+registry.SettingCA+" (default: write --schemas-topic directly)")
	upstream := fs.String("upstream", "", "upstream bootstrap servers (required)")
	upstreamTopic := fs.String("upstream-topic", "", "upstream alert topic (required)")
	upstreamConfig := fs.String("upstream-config", "", "librdkafka properties file for the upstream (security.protocol, sasl.mechanism, sasl.username, sasl.password, ssl.ca.location, ...)")
	upstreamRegistry := fs.String("upstream-registry", "", "the upstream's schema registry (required): a properties file with "+
		registry.SettingURL+", "+registry.SettingUserInfo+" and "+registry.SettingCA)
	fromBeginning := fs.Bool("from-beginning", false, "with no saved offsets, start at the upstream's oldest alert instead of its end")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usagef("unexpected arguments %q", fs.Args())
	case *upstream == "" || *upstreamTopic == "" || *upstreamRegistry == "":
		return usagef("--upstream, --upstream-topic and --upstream-registry are required")
	}
	over, err := k.overrides()
	if err != nil {
		return err
	}
	upstreamKafka := map[string]string{}
	if *upstreamConfig != "" {
		if upstreamKafka, err = kclient.ReadProperties(*upstreamConfig); err != nil {
			return usageError{err}
		}
	}
	upReg, err := registryClient(*upstreamRegistry)
	if err != nil {
		return err
	}
	var ours *registry.Client
	if *registryFile != "" {
		if ours, err = registryClient(*registryFile); err != nil {
			return err
		}
	}
	return pipeline.Ingest(ctx, pipeline.IngestConfig{
		Upstream: *upstream, UpstreamTopic: *upstreamTopic, UpstreamKafka: upstreamKafka, UpstreamRegistry: upReg,
		Bootstrap: k.bootstrap, Topic: *topic, Partitions: *partitions, Registry: ours, SchemasTopic: *schemas,
		TimingTopic: k.timingTopic, FromBeginning: *fromBeginning, Kafka: over, Log: log,
	})
}

// registryClient reads a schema registry client's properties file.
func registryClient(path string) (*registry.Client, error) {
	settings, err := kclient.ReadProperties(path)
	if err != nil {
		return nil, usageError{err}
	}
	c, err := registry.NewClient(settings)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}
