package kclient

import (
	"context"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kfake"
)

func TestParseOverrides(t *testing.T) {
	got, err := ParseOverrides([]string{
		"compression.type=lz4",
		" linger.ms =50",              // the key is trimmed
		"sasl.password=a=b=c",         // the value keeps everything after the first =
		"client.id=",                  // an empty value is a value
		"compression.type=zstd",       // the last one wins
		"ssl.ca.location=/etc/ca.pem", // values are not trimmed or parsed
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"compression.type": "zstd",
		"linger.ms":        "50",
		"sasl.password":    "a=b=c",
		"client.id":        "",
		"ssl.ca.location":  "/etc/ca.pem",
	}
	if !maps.Equal(got, want) {
		t.Fatalf("ParseOverrides = %v, want %v", got, want)
	}

	if m, err := ParseOverrides(nil); err != nil || m == nil || len(m) != 0 {
		t.Fatalf("no overrides: got %v, %v; want an empty non-nil map", m, err)
	}

	for _, bad := range []string{"linger.ms", "", "=5", "  =5", "compression.type lz4"} {
		m, err := ParseOverrides([]string{"acks=all", bad})
		if err == nil {
			t.Errorf("ParseOverrides(%q) = %v, want an error", bad, m)
			continue
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) || !strings.Contains(err.Error(), "key=value") {
			t.Errorf("ParseOverrides(%q) error %q should quote the entry and say key=value", bad, err)
		}
	}
}

func get(t *testing.T, cm *kafka.ConfigMap, key string) kafka.ConfigValue {
	t.Helper()
	v, err := cm.Get(key, nil)
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	if v == nil {
		t.Fatalf("%s is not set", key)
	}
	return v
}

// asInt reads an int setting, whether set by the defaults (int) or by an
// override (string).
func asInt(t *testing.T, cm *kafka.ConfigMap, key string) int {
	t.Helper()
	switch v := get(t, cm, key).(type) {
	case int:
		return v
	case string:
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("%s = %q is not an int", key, v)
		}
		return n
	default:
		t.Fatalf("%s = %v (%T), want an int", key, v, v)
		return 0
	}
}

func asString(t *testing.T, cm *kafka.ConfigMap, key string) string {
	t.Helper()
	return fmt.Sprint(get(t, cm, key))
}

func TestOverridesWin(t *testing.T) {
	over := map[string]string{"compression.type": "lz4", "linger.ms": "50", "batch.size": "65536", "client.id": "mine"}
	p := ProducerConfig("b:9092", over)
	for k, v := range over {
		if got := get(t, p, k); got != v {
			t.Errorf("producer %s = %v, want the override %q", k, got, v)
		}
	}
	if got := asString(t, p, "acks"); got != "all" {
		t.Errorf("an override of other keys changed acks to %q", got)
	}
	if got := asString(t, p, "bootstrap.servers"); got != "b:9092" {
		t.Errorf("bootstrap.servers = %q", got)
	}

	cover := map[string]string{"fetch.wait.max.ms": "250", "auto.offset.reset": "earliest", "group.id": "override-group"}
	c := ConsumerConfig("b:9092", "g", false, cover)
	for k, v := range cover {
		if got := get(t, c, k); got != v {
			t.Errorf("consumer %s = %v, want the override %q", k, got, v)
		}
	}
	if got, want := asInt(t, c, "max.partition.fetch.bytes"), asInt(t, ConsumerConfig("b:9092", "g", false, nil), "max.partition.fetch.bytes"); got != want {
		t.Errorf("an override of other keys changed max.partition.fetch.bytes to %d, want the default %d", got, want)
	}

	// The defaults' maps are fresh per call: an override does not leak.
	if got := asInt(t, ProducerConfig("b", nil), "linger.ms"); got == 50 {
		t.Errorf("an override leaked into the next ProducerConfig")
	}
}

func TestConsumerConfigBasics(t *testing.T) {
	c := ConsumerConfig("h:1", "grp", false, nil)
	for k, want := range map[string]string{
		"bootstrap.servers": "h:1", "group.id": "grp", "auto.offset.reset": "latest",
		"allow.auto.create.topics": "false", "enable.auto.commit": "true",
	} {
		if got := asString(t, c, k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if got := asString(t, ConsumerConfig("h:1", "grp", true, nil), "auto.offset.reset"); got != "earliest" {
		t.Errorf("fromBeginning: auto.offset.reset = %q, want earliest", got)
	}
	r := ReaderConfig("h:1", nil)
	for k, want := range map[string]string{"enable.auto.commit": "false", "enable.auto.offset.store": "false", "auto.offset.reset": "earliest"} {
		if got := asString(t, r, k); got != want {
			t.Errorf("reader %s = %q, want %q", k, got, want)
		}
	}
	// librdkafka refuses receive.message.max.bytes < fetch.max.bytes + 512,
	// and a partition fetch larger than the whole fetch is pointless.
	fetchMax, recvMax, partMax := asInt(t, c, "fetch.max.bytes"), asInt(t, c, "receive.message.max.bytes"), asInt(t, c, "max.partition.fetch.bytes")
	if recvMax < fetchMax+512 {
		t.Errorf("receive.message.max.bytes %d < fetch.max.bytes %d + 512", recvMax, fetchMax)
	}
	if partMax > fetchMax {
		t.Errorf("max.partition.fetch.bytes %d should not exceed fetch.max.bytes %d", partMax, fetchMax)
	}
	// A fetch should hold at least one full producer batch of alerts.
	if pb := asInt(t, ProducerConfig("h:1", nil), "batch.size"); partMax < pb {
		t.Errorf("max.partition.fetch.bytes %d is below the producer's batch.size %d", partMax, pb)
	}
	p := ProducerConfig("h:1", nil)
	if got := asInt(t, p, "message.max.bytes"); got != MaxMessageBytes {
		t.Errorf("producer message.max.bytes %d, want MaxMessageBytes %d", got, MaxMessageBytes)
	}
	if got := asInt(t, p, "batch.size"); got > MaxMessageBytes {
		t.Errorf("batch.size %d > message.max.bytes %d", got, MaxMessageBytes)
	}
	if got := TopicConfig(false); !maps.Equal(got, map[string]string{"max.message.bytes": strconv.Itoa(MaxMessageBytes)}) {
		t.Errorf("TopicConfig(false) = %v", got)
	}
	if got := TopicConfig(true); got["cleanup.policy"] != "compact" || got["max.message.bytes"] != strconv.Itoa(MaxMessageBytes) {
		t.Errorf("TopicConfig(true) = %v", got)
	}
}

// TestLibrdkafkaAcceptsConfigs builds real clients from the settings (no
// broker is needed): librdkafka checks ranges and combinations at creation.
func TestLibrdkafkaAcceptsConfigs(t *testing.T) {
	const nowhere = "127.0.0.1:1"
	p, err := kafka.NewProducer(ProducerConfig(nowhere, nil))
	if err != nil {
		t.Fatalf("librdkafka refuses ProducerConfig: %v", err)
	}
	p.Close()
	for _, cm := range []*kafka.ConfigMap{ConsumerConfig(nowhere, "g", true, nil), ConsumerConfig(nowhere, "g", false, nil), ReaderConfig(nowhere, nil)} {
		c, err := kafka.NewConsumer(cm)
		if err != nil {
			t.Fatalf("librdkafka refuses consumer config %v: %v", cm, err)
		}
		c.Close()
	}
	a, err := kafka.NewAdminClient(AdminConfig(nowhere, nil))
	if err != nil {
		t.Fatalf("librdkafka refuses AdminConfig: %v", err)
	}
	a.Close()
	if _, err := kafka.NewProducer(ProducerConfig(nowhere, map[string]string{"compression.type": "nonsense"})); err == nil {
		t.Fatal("a bad override should make librdkafka refuse the config")
	}
}

// docSettings extracts the key=value settings from the package doc comment
// of config.go, e.g. "batch.size=4 MiB" or "acks=all", with the section
// (Producer or Consumer) they are listed under.
func docSettings(t *testing.T) map[string]map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "config.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	if f.Doc == nil {
		t.Fatal("config.go has no package doc comment")
	}
	setting := regexp.MustCompile(`\b([a-z]+(?:\.[a-z]+)*)=([0-9]+ (?:MiB|KiB)|[A-Za-z0-9]+)`)
	out := map[string]map[string]string{}
	section := ""
	for line := range strings.SplitSeq(f.Doc.Text(), "\n") {
		switch strings.TrimSpace(line) {
		case "Producer:":
			section = "producer"
			continue
		case "Consumer:":
			section = "consumer"
			continue
		}
		if section == "" {
			continue
		}
		for _, m := range setting.FindAllStringSubmatch(line, -1) {
			if out[section] == nil {
				out[section] = map[string]string{}
			}
			out[section][m[1]] = m[2]
		}
	}
	return out
}

// docValue turns a documented value into what the config map holds:
// sizes in bytes, or in KiB for *.kbytes settings.
func docValue(key, v string) string {
	n, unit, ok := strings.Cut(v, " ")
	if !ok {
		return v
	}
	b, _ := strconv.Atoi(n)
	switch unit {
	case "MiB":
		b <<= 20
	case "KiB":
		b <<= 10
	}
	if strings.HasSuffix(key, ".kbytes") {
		b >>= 10
	}
	return strconv.Itoa(b)
}

// TestDocumentedSettings checks that each setting the package doc comment
// states is the value the config maps hold, so the doc cannot drift.
func TestDocumentedSettings(t *testing.T) {
	doc := docSettings(t)
	t.Logf("documented settings: %v", doc)
	for section, keys := range map[string][]string{
		"producer": {"acks", "enable.idempotence", "batch.size", "linger.ms", "message.max.bytes", "compression.type", "max.message.bytes"},
		"consumer": {"max.partition.fetch.bytes", "fetch.max.bytes", "fetch.wait.max.ms", "queued.max.messages.kbytes"},
	} {
		for _, k := range keys {
			if _, ok := doc[section][k]; !ok {
				t.Errorf("the doc comment's %s section no longer states %s=...; found %v", section, k, slices.Sorted(maps.Keys(doc[section])))
			}
		}
	}
	cfgs := map[string]*kafka.ConfigMap{
		"producer": ProducerConfig("b", nil),
		"consumer": ConsumerConfig("b", "g", false, nil),
	}
	for section, kv := range doc {
		for k, v := range kv {
			want := docValue(k, v)
			var got string
			if k == "max.message.bytes" { // a topic setting, stated under Producer
				got = TopicConfig(false)[k]
			} else {
				got = asString(t, cfgs[section], k)
			}
			if got != want {
				t.Errorf("doc comment says %s=%s (%s) but %s config holds %s", k, v, want, section, got)
			}
		}
	}
}

// cluster starts an embedded broker; auto topic creation is on so that a
// metadata request naming a topic would create it.
func cluster(t *testing.T) (*kfake.Cluster, string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(),
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": strconv.Itoa(MaxMessageBytes)}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()[0]
}

func TestEnsureTopicsIdempotent(t *testing.T) {
	c, addr := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topics := []Topic{{Name: "alerts", Partitions: 4}, {Name: "schemas", Partitions: 1, Compacted: true}, {Name: "zero", Partitions: 0}}
	if err := EnsureTopics(ctx, addr, nil, topics...); err != nil {
		t.Fatal(err)
	}
	// Again, and with another partition count: existing topics are kept as they are.
	if err := EnsureTopics(ctx, addr, nil, Topic{Name: "alerts", Partitions: 8}, Topic{Name: "schemas", Partitions: 1, Compacted: true}); err != nil {
		t.Fatalf("second EnsureTopics: %v", err)
	}
	for _, tc := range []struct {
		name      string
		parts     int
		compacted bool
	}{{"alerts", 4, false}, {"schemas", 1, true}, {"zero", 1, false}} {
		if n := len(c.PartitionInfos(tc.name)); n != tc.parts {
			t.Errorf("%s has %d partitions, want %d", tc.name, n, tc.parts)
		}
		info := c.TopicInfo(tc.name)
		if info == nil {
			t.Fatalf("topic %s missing", tc.name)
		}
		if v := info.Configs["max.message.bytes"]; v == nil || *v != strconv.Itoa(MaxMessageBytes) {
			t.Errorf("%s max.message.bytes = %v, want %d", tc.name, v, MaxMessageBytes)
		}
		v := info.Configs["cleanup.policy"]
		if tc.compacted && (v == nil || *v != "compact") {
			t.Errorf("%s cleanup.policy = %v, want compact", tc.name, v)
		}
		if !tc.compacted && v != nil && *v == "compact" {
			t.Errorf("%s is compacted", tc.name)
		}
		ids, err := WaitTopic(ctx, addr, nil, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(ids)
		if want := seq(tc.parts); !slices.Equal(ids, want) {
			t.Errorf("WaitTopic(%s) = %v, want %v", tc.name, ids, want)
		}
	}
}

func seq(n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i)
	}
	return out
}

func TestWaitTopic(t *testing.T) {
	c, addr := cluster(t)
	ctx := context.Background()

	// A missing topic: a clear error after the deadline, and no topic made.
	short, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	ids, err := WaitTopic(short, addr, nil, "not-there")
	if err == nil {
		t.Fatalf("WaitTopic on a missing topic returned %v, want an error", ids)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("WaitTopic took %s to give up after a 700ms deadline", d)
	}
	for _, s := range []string{`"not-there"`, addr, "deadline exceeded", "does not exist"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
	if c.TopicInfo("not-there") != nil {
		t.Fatal("WaitTopic created the topic it waited for (auto-creation through metadata)")
	}

	// A topic created while waiting is found.
	go func() {
		time.Sleep(300 * time.Millisecond)
		_ = c.CreateTopic("late", 3, nil)
	}()
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	ids, err = WaitTopic(wctx, addr, nil, "late")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, seq(3)) {
		t.Fatalf("WaitTopic(late) = %v, want [0 1 2]", ids)
	}
}

// produce writes messages with explicit partitions and waits for them.
func produce(t *testing.T, addr string, msgs ...*kafka.Message) {
	t.Helper()
	p, err := kafka.NewProducer(ProducerConfig(addr, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	reports := make(chan kafka.Event, len(msgs))
	for _, m := range msgs {
		if err := p.Produce(m, reports); err != nil {
			t.Fatal(err)
		}
	}
	for range msgs {
		select {
		case ev := <-reports:
			if m := ev.(*kafka.Message); m.TopicPartition.Error != nil {
				t.Fatalf("produce: %v", m.TopicPartition.Error)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no delivery report after 20s")
		}
	}
}

func TestReadAll(t *testing.T) {
	c, addr := cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topic := "events"
	if err := EnsureTopics(ctx, addr, nil, Topic{Name: topic, Partitions: 3}, Topic{Name: "empty", Partitions: 2}); err != nil {
		t.Fatal(err)
	}
	want := map[int32][]string{}
	var msgs []*kafka.Message
	for p := range int32(3) {
		for i := range 10 * int(p+1) {
			v := fmt.Sprintf("p%d-%03d", p, i)
			want[p] = append(want[p], v)
			msgs = append(msgs, &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: p},
				Key: []byte(v), Value: []byte(v), Headers: []kafka.Header{{Key: "h", Value: []byte(v)}}})
		}
	}
	produce(t, addr, msgs...)

	got := map[int32][]string{}
	calls := 0
	err := ReadAll(ctx, addr, nil, topic, func(m *kafka.Message) error {
		calls++
		if string(m.Key) != string(m.Value) || len(m.Headers) != 1 || string(m.Headers[0].Value) != string(m.Value) {
			t.Errorf("message %s lost its key or header", m.Value)
		}
		if calls == 1 { // written after ReadAll found the end offsets: not read
			produce(t, addr, &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: 0}, Value: []byte("late")})
		}
		got[m.TopicPartition.Partition] = append(got[m.TopicPartition.Partition], string(m.Value))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 60 {
		t.Errorf("ReadAll made %d calls, want 60", calls)
	}
	for p := range int32(3) {
		if !slices.Equal(got[p], want[p]) {
			t.Errorf("partition %d: got %v, want %v (in offset order)", p, got[p], want[p])
		}
	}

	// The callback's error stops the read and is returned.
	stop := errors.New("stop here")
	n := 0
	err = ReadAll(ctx, addr, nil, topic, func(*kafka.Message) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("ReadAll with a failing callback: err %v after %d calls, want %v after 1", err, n, stop)
	}

	// Missing and empty topics hold nothing; a missing one is not created.
	for _, name := range []string{"missing", "empty"} {
		start := time.Now()
		err := ReadAll(ctx, addr, nil, name, func(m *kafka.Message) error {
			t.Errorf("%s: unexpected message %s", name, m.Value)
			return nil
		})
		if err != nil {
			t.Errorf("ReadAll(%s) = %v, want nil", name, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("ReadAll(%s) took %s", name, d)
		}
	}
	if c.TopicInfo("missing") != nil {
		t.Error("ReadAll created the missing topic")
	}

	// A context that ends stops the read with its error.
	done, dcancel := context.WithCancel(ctx)
	dcancel()
	if err := ReadAll(done, addr, nil, topic, func(*kafka.Message) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadAll with a cancelled context = %v, want context.Canceled", err)
	}
}

// Properties written with Java's escaping (as kafkaconf renders them and
// minibroker_swarm.report_properties holds them) read back whole: a PEM
// certificate on one line, an escaped '=' in a key, a password with a
// backslash.
func TestParsePropertiesEscapes(t *testing.T) {
	text := "# written by kafkaconf\n" +
		`ssl.ca.pem=-----BEGIN CERTIFICATE-----\nMIIBxx\n-----END CERTIFICATE-----\n` + "\n" +
		`odd\=key=v` + "\n" +
		`sasl.password=a\\b=c` + "\n"
	got, err := ParseProperties("test", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"ssl.ca.pem":    "-----BEGIN CERTIFICATE-----\nMIIBxx\n-----END CERTIFICATE-----\n",
		"odd=key":       "v",
		"sasl.password": `a\b=c`,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}
