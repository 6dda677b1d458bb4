package main

import (
	"flag"
	"io"
	"os"

	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// kafkaFlags are the connection flags every Kafka subcommand shares.
type kafkaFlags struct {
	bootstrap       string
	timingBootstrap string
	timingTopic     string
	settingsFlags
}

func (k *kafkaFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.bootstrap, "bootstrap", "localhost:9092", "Kafka bootstrap servers")
	fs.StringVar(&k.timingBootstrap, "timing-bootstrap", "", "bootstrap servers of the hub that keeps timing events (produce, filter: default --bootstrap; consume sends none without it)")
	fs.StringVar(&k.timingTopic, "timing-topic", stream.TimingTopic, "topic for timing events (empty disables them)")
	k.settingsFlags.register(fs)
}

// settingsFlags are the librdkafka settings of a command's clients: how
// they authenticate (a properties file, as minibroker_filter_group's
// outputs give it) and any tuning.
type settingsFlags struct {
	settings stringList
	config   string
}

func (k *settingsFlags) register(fs *flag.FlagSet) {
	fs.Var(&k.settings, "kafka", "librdkafka setting key=value overriding the defaults (repeatable; wins over --config)")
	fs.StringVar(&k.config, "config", "", "librdkafka properties file (key=value lines, e.g. security.protocol, sasl.*, ssl.*; - reads standard input) "+
		"applied to every Kafka client of the command")
}

func (k *settingsFlags) overrides() (map[string]string, error) {
	m := map[string]string{}
	if k.config != "" {
		var file map[string]string
		var err error
		if k.config == "-" {
			var data []byte
			if data, err = io.ReadAll(os.Stdin); err == nil {
				file, err = kclient.ParseProperties("standard input", data)
			}
		} else {
			file, err = kclient.ReadProperties(k.config)
		}
		if err != nil {
			return nil, usageError{err}
		}
		m = file
	}
	flags, err := kclient.ParseOverrides(k.settings)
	if err != nil {
		return nil, usageError{err}
	}
	for key, v := range flags {
		m[key] = v
	}
	return m, nil
}

// flagSet reports whether the command line set the named flag.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
