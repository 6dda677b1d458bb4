package provider

// Plan-time checks of what apply, or the processes it starts, would
// otherwise fail on (issue 13): Kafka properties, topic names and
// patterns, filter outputs and cost limits. Each error names the
// attribute.

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"
	"sort"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"

	"github.com/minibroker/terraform-provider-minibroker/internal/kafkaconf"
	"github.com/minibroker/terraform-provider-minibroker/workloads/filter"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// Kafka property keys. A broker's server.properties key is lower-case
// letters, digits, '.', '_' and '-' (listener names appear lower-case in
// listener.name.* keys); MirrorMaker 2's mm2.properties may prefix one
// with a replication flow, "SOURCE->TARGET." (hub->mirror.tasks.max).
var (
	kafkaPropertyKey = regexp.MustCompile(`^[a-z0-9._-]+$`)
	mm2PropertyKey   = regexp.MustCompile(`^[a-z0-9._-]+(->[a-z0-9._-]+)?$`)
)

// propertiesValidator checks a map of Kafka properties: keys that look
// like Kafka's (mm2 allows MirrorMaker 2's flow prefix), values that are
// not empty and hold no line break (a properties file would read the rest
// as another entry).
type propertiesValidator struct{ mm2 bool }

var _ validator.Map = propertiesValidator{}

func (v propertiesValidator) Description(context.Context) string {
	if v.mm2 {
		return "MirrorMaker 2 properties: keys of a-z 0-9 . _ - (optionally after SOURCE->TARGET), values on one line"
	}
	return "Kafka properties: keys of a-z 0-9 . _ -, values on one line"
}

func (v propertiesValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (v propertiesValidator) ValidateMap(ctx context.Context, req validator.MapRequest, resp *validator.MapResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	props := map[string]string{}
	for k, e := range req.ConfigValue.Elements() {
		s, ok := e.(interface {
			IsUnknown() bool
			IsNull() bool
			ValueString() string
		})
		if !ok || s.IsUnknown() {
			continue
		}
		props[k] = s.ValueString()
		if s.IsNull() {
			props[k] = ""
		}
	}
	for _, p := range checkProperties(props, v.mm2) {
		resp.Diagnostics.AddAttributeError(req.Path.AtMapKey(p.key), "Invalid Kafka property", p.msg)
	}
}

type propertyProblem struct{ key, msg string }

// checkProperties returns the problems of a properties map, by key.
func checkProperties(props map[string]string, mm2 bool) []propertyProblem {
	keyRE, want := kafkaPropertyKey, "a Kafka configuration key: lower-case letters, digits, '.', '_' or '-', e.g. num.network.threads"
	if mm2 {
		keyRE, want = mm2PropertyKey, "a MirrorMaker 2 configuration key: lower-case letters, digits, '.', '_' or '-', "+
			"optionally after a flow SOURCE->TARGET, e.g. hub->mirror.tasks.max"
	}
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []propertyProblem
	for _, k := range keys {
		v := props[k]
		switch {
		case !keyRE.MatchString(k):
			out = append(out, propertyProblem{k, fmt.Sprintf("%q is not %s", k, want)})
		case v == "":
			out = append(out, propertyProblem{k, fmt.Sprintf("%q has an empty value: give one, or leave the key out for the default", k)})
		case strings.ContainsAny(v, "\r\n"):
			out = append(out, propertyProblem{k, fmt.Sprintf("the value of %q holds a line break: a properties file would read what follows as "+
				"another entry (write a PEM certificate or a JAAS line on one line)", k)})
		}
	}
	return out
}

// mirrorTopicsValidator checks a mirror's topics, the Java regular
// expression of hub topics MirrorMaker 2 copies. It must be a regular
// expression that Java accepts (syntax errors Go's RE2 shares with it are
// refused; constructs only Java has, such as look-arounds, are let through
// unchecked), and, when Go can read it, match the alert stream and its
// schemas, which every filter on the mirror reads.
func mirrorTopicsValidator() stringCheck {
	return stringCheck{"a Java regular expression of hub topics that matches " + stream.AlertsTopic + " and " + stream.SchemasTopic,
		"Invalid mirror topics", checkMirrorTopics}
}

func checkMirrorTopics(s string) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("empty: give a Java regular expression of hub topics, such as the default %s", kafkaconf.DefaultMirrorTopics)
	}
	if strings.ContainsAny(s, "\r\n") {
		return fmt.Errorf("%q holds a line break, which mm2.properties would read as another entry", s)
	}
	if _, err := syntax.Parse(s, syntax.Perl); err != nil {
		var se *syntax.Error
		if serr, ok := err.(*syntax.Error); ok {
			se = serr
		}
		switch {
		case se != nil && (se.Code == syntax.ErrInvalidPerlOp || se.Code == syntax.ErrInvalidRepeatOp ||
			se.Code == syntax.ErrInvalidEscape || se.Code == syntax.ErrInvalidNamedCapture):
			return nil // Java has these (look-arounds, possessive quantifiers, \Q..\E, back-references): MirrorMaker 2 decides
		default:
			return fmt.Errorf("%q is not a regular expression: %v", s, err)
		}
	}
	re := regexp.MustCompile(`^(?:` + s + `)$`) // MirrorMaker 2 matches whole names
	var missing []string
	for _, t := range []string{stream.AlertsTopic, stream.SchemasTopic} {
		if !re.MatchString(t) {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%q does not match %s: the filters on the mirror read %s and decode it with the schemas in %s, "+
			"so a mirror without them feeds its filters nothing (the default is %s)",
			s, strings.Join(missing, " or "), stream.AlertsTopic, stream.SchemasTopic, kafkaconf.DefaultMirrorTopics)
	}
	return nil
}

// validateFilterOutputs adds an error, at the attribute that sets it
// (output, or name when output is empty), for each filter whose output
// topic is reserved (stream.Reserved) or is also another filter's of the
// group (Kafka takes '.' and '_' as the same). (cost_limit's range is the
// schema's.)
func validateFilterOutputs(fs []filterModel, diags *diag.Diagnostics) {
	seen := map[string]int{}
	for i, f := range fs {
		p := path.Root("filters").AtListIndex(i)
		if f.Name.IsUnknown() || f.Output.IsUnknown() || f.Name.IsNull() {
			continue
		}
		out, at := f.Output.ValueString(), p.AtName("output")
		if f.Output.IsNull() {
			out, at = f.Name.ValueString(), p.AtName("name")
		}
		if !filter.ValidName(out) {
			if !f.Output.IsNull() {
				diags.AddAttributeError(at, "Invalid output topic", fmt.Sprintf("filters[%d] (%s): %q is not a Kafka topic name: "+
					"1 to 200 letters, digits, '.', '_' or '-'", i, f.Name.ValueString(), out))
			}
			continue // an invalid name is reported as such
		}
		if why, reserved := stream.Reserved(out); reserved {
			what := "its output topic"
			if f.Output.IsNull() {
				what = "its name, which is its output topic without `output`,"
			}
			diags.AddAttributeError(at, "Reserved output topic", fmt.Sprintf("filters[%d] (%s): %s %q is reserved: %s. "+
				"The mini-broker keeps %s, %s, %s, %s, heartbeats, __*, *-deadletter, *-state and *.internal for itself; choose another `output`.",
				i, f.Name.ValueString(), what, out, why, stream.AlertsTopic, stream.SchemasTopic, stream.TimingTopic, stream.IngestStateTopic))
			continue
		}
		key := stream.TopicCollisionKey(out)
		if j, dup := seen[key]; dup {
			other := fs[j].Output.ValueString()
			if fs[j].Output.IsNull() {
				other = fs[j].Name.ValueString()
			}
			msg := fmt.Sprintf("filters[%d] (%s) writes to %q, as filters[%d] (%s) does: each filter needs its own output topic", i, f.Name.ValueString(), out, j, fs[j].Name.ValueString())
			if other != out {
				msg = fmt.Sprintf("filters[%d] (%s) writes to %q and filters[%d] (%s) to %q: Kafka takes '.' and '_' as the same and refuses the second topic",
					i, f.Name.ValueString(), out, j, fs[j].Name.ValueString(), other)
			}
			diags.AddAttributeError(at, "Duplicate output topic", msg)
			continue
		}
		seen[key] = i
	}
}

// maxCutoutBytes bounds a synthetic alert's cutouts: three of them, with
// room for the rest of the alert and its record's framing, must fit the
// hub's message.max.bytes, or every alert would be too large to send.
const maxCutoutBytes = (hubMessageMaxBytes - 64<<10) / 3

// hubMessageMaxBytes is the hub's message.max.bytes, and its topics'.
const hubMessageMaxBytes = kafkaconf.DefaultMessageMaxBytes

// maxAlertsPerVisit bounds a visit: every filter keeps one bit per alert
// of each open visit (to drop MirrorMaker's copies), and a Rubin visit
// has about 10,000 alerts.
const maxAlertsPerVisit = 1_000_000

// maxRetentionMinutes is the most log.retention.minutes takes: Kafka
// reads it as a 32-bit int and does not start with more.
const maxRetentionMinutes = math.MaxInt32
