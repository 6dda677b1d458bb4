package provider

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

func TestCheckProperties(t *testing.T) {
	good := map[string]string{"num.network.threads": "4", "listener.name.broker.ssl.keystore.type": "PEM", "log.cleaner_x-y": "1"}
	if p := checkProperties(good, false); len(p) != 0 {
		t.Errorf("good properties refused: %v", p)
	}
	if p := checkProperties(map[string]string{"hub->mirror.tasks.max": "4", "replication.factor": "1"}, true); len(p) != 0 {
		t.Errorf("good MirrorMaker 2 properties refused: %v", p)
	}
	for props, want := range map[string]string{
		"Num.Network.Threads=4":                        "is not a Kafka configuration key",
		"num network threads=4":                        "is not a Kafka configuration key",
		"log.dirs\n=x":                                 "is not a Kafka configuration key",
		"hub->mirror.tasks.max=4":                      "is not a Kafka configuration key", // a flow only in mm2.properties
		"num.io.threads=":                              "has an empty value",
		"ssl.truststore.certificates=-----BEGIN\nCERT": "holds a line break",
		"sasl.jaas.config=a;\rb":                       "holds a line break",
	} {
		k, v, _ := strings.Cut(props, "=")
		p := checkProperties(map[string]string{k: v}, false)
		if len(p) != 1 || p[0].key != k || !strings.Contains(p[0].msg, want) {
			t.Errorf("%q: %v, want %q", props, p, want)
		}
	}
	if p := checkProperties(map[string]string{"hub->mirror->x.y": "1", "->a": "1", "HUB->mirror.a": "1"}, true); len(p) != 3 {
		t.Errorf("bad MirrorMaker 2 keys: %v", p)
	}
}

func TestCheckMirrorTopics(t *testing.T) {
	for _, ok := range []string{"alerts|minibroker-schemas", "alerts|minibroker-schemas|extra\\..*", ".*",
		"(alerts|minibroker-schemas)(?!-old)", "alerts|minibroker-schemas|a*+"} {
		if err := checkMirrorTopics(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for bad, want := range map[string]string{
		"":                                "empty",
		"alerts":                          `does not match minibroker-schemas`,
		"minibroker-.*":                   `does not match alerts`,
		"other":                           `does not match alerts or minibroker-schemas`,
		"(alerts|minibroker-schemas":      "is not a regular expression",
		"*alerts":                         "is not a regular expression",
		"alerts|minibroker-schemas|[z-a]": "is not a regular expression",
		"alerts|\nminibroker-schemas":     "line break",
	} {
		if err := checkMirrorTopics(bad); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", bad, err, want)
		}
	}
}

func TestValidateFilterOutputs(t *testing.T) {
	f := func(name, output string) filterModel {
		m := filterModel{Name: types.StringValue(name), Output: types.StringNull()}
		if output != "" {
			m.Output = types.StringValue(output)
		}
		return m
	}
	var diags diag.Diagnostics
	validateFilterOutputs([]filterModel{
		f("ok", ""),                        // 0
		f("alerts", ""),                    // 1: its name is reserved
		f("x", "minibroker-schemas"),       // 2
		f("y", "g-deadletter"),             // 3
		f("z", "__consumer_offsets"),       // 4
		f("dup", "ok"),                     // 5: filters[0]'s output
		f("a.b", ""),                       // 6
		f("c", "a_b"),                      // 7: collides with a.b
		f("d", "mm2-offsets.hub.internal"), // 8
		f("e", "has space"),                // 9
		f("fine", "my-stream"),             // 10
		{Name: types.StringValue("later"), Output: types.StringUnknown()},
	}, &diags)
	got := map[string]string{}
	for _, d := range diags.Errors() {
		wp, ok := d.(diag.DiagnosticWithPath)
		if !ok {
			t.Fatalf("diagnostic without a path: %v", d)
		}
		got[wp.Path().String()] = d.Summary() + ": " + d.Detail()
	}
	for p, want := range map[string]string{
		"filters[1].name":   `Reserved output topic: filters[1] (alerts): its name, which is its output topic without ` + "`output`" + `, "alerts" is reserved: the full alert stream`,
		"filters[2].output": `"minibroker-schemas" is reserved: the schema registry's topic`,
		"filters[3].output": `"g-deadletter" is reserved: a filter process's dead letters`,
		"filters[4].output": `is reserved: Kafka's internal topics`,
		"filters[5].output": `Duplicate output topic: filters[5] (dup) writes to "ok", as filters[0] (ok) does`,
		"filters[7].output": `filters[7] (c) writes to "a_b" and filters[6] (a.b) to "a.b": Kafka takes '.' and '_' as the same`,
		"filters[8].output": `is reserved: MirrorMaker 2's and Kafka Connect's internal topics`,
		"filters[9].output": `Invalid output topic: filters[9] (e): "has space" is not a Kafka topic name`,
	} {
		if !strings.Contains(got[p], want) {
			t.Errorf("%s: %q, want %q", p, got[p], want)
		}
	}
	if len(got) != 8 {
		t.Errorf("%d errors, want 8: %v", len(got), fmt.Sprint(got))
	}
}
