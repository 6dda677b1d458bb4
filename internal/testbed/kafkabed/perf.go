package kafkabed

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Kafka perf tool main classes (kafka-producer-perf-test.sh and
// kafka-consumer-perf-test.sh).
const (
	producerPerfClass = "org.apache.kafka.tools.ProducerPerformance"
	consumerPerfClass = "org.apache.kafka.tools.ConsumerPerformance"
)

// PerfResult is the final summary of a Kafka perf tool run. Kafka's "MB" is
// 2^20 bytes. Producer-only and consumer-only fields are zero for the other.
type PerfResult struct {
	Records       int64   // records produced or consumed
	RecordsPerSec float64 // records/sec (consumer: nMsg.sec)
	MBPerSec      float64 // MiB/sec (consumer: MB.sec)

	// Producer only: send-to-ack latency in milliseconds.
	AvgLatencyMs, MaxLatencyMs  float64
	P50Ms, P95Ms, P99Ms, P999Ms float64
	// Producer only: the figures are the tool's steady-state summary, over
	// the records after the warm-up ones (WithPerfWarmupRecords).
	Steady bool

	// Consumer only.
	DataMB             float64 // MiB consumed
	RebalanceMs        float64 // time to join the group
	FetchMs            float64 // time spent fetching, after the rebalance
	FetchMBPerSec      float64 // MiB/sec over FetchMs only
	FetchRecordsPerSec float64 // records/sec over FetchMs only

	Elapsed time.Duration // wall time of the whole tool run, JVM start included
	CPU     time.Duration // the tool's CPU time (user and system), JVM start and JIT included
	Summary string        // the summary text the result was parsed from
}

// ProducerPerf runs Kafka's ProducerPerformance against b: records records of
// recordSize random bytes to topic, unthrottled, with producerProps (e.g.
// linger.ms, batch.size, acks) as producer configs. The topic is auto-created
// if absent (1 partition by default). WithPerfPayloads sends payloads made
// beforehand, WithPerfWarmupRecords reports the steady state.
func ProducerPerf(ctx context.Context, b *Broker, topic string, records, recordSize int, producerProps map[string]string, opts ...PerfOption) (PerfResult, error) {
	cfg := newPerfConfig(opts)
	props := map[string]string{}
	for k, v := range producerProps {
		props[k] = v
	}
	for k, v := range cfg.props {
		props[k] = v
	}
	args := []string{
		"--bootstrap-server", b.Bootstrap(),
		"--topic", topic,
		"--num-records", strconv.Itoa(records),
		"--throughput", "-1",
	}
	if cfg.payloads > 0 {
		path, err := writePayloads(b.dir, recordSize, cfg.payloads)
		if err != nil {
			return PerfResult{}, err
		}
		args = append(args, "--payload-file", path)
	} else {
		args = append(args, "--record-size", strconv.Itoa(recordSize))
	}
	if cfg.warmup > 0 {
		args = append(args, "--warmup-records", strconv.Itoa(cfg.warmup))
	}
	args = append(args, commandProperties(props)...)
	out, elapsed, cpu, err := b.runPerf(ctx, producerPerfClass, cfg, args)
	if err != nil {
		return PerfResult{}, err
	}
	res, err := parseProducerPerf(out)
	res.Elapsed, res.CPU = elapsed, cpu
	if err != nil {
		return res, fmt.Errorf("kafkabed: producer perf on %q: %w", topic, err)
	}
	return res, nil
}

// ConsumerPerf runs Kafka's ConsumerPerformance against b, consuming messages
// records of topic from the earliest offset in a fresh consumer group. It
// fails if fewer records arrive before the idle timeout (see
// WithPerfIdleTimeout), returning the partial result with the error.
func ConsumerPerf(ctx context.Context, b *Broker, topic string, messages int, opts ...PerfOption) (PerfResult, error) {
	cfg := newPerfConfig(opts)
	args := []string{
		"--bootstrap-server", b.Bootstrap(),
		"--topic", topic,
		"--num-records", strconv.Itoa(messages),
		"--group", "kafkabed-perf-" + strconv.FormatInt(time.Now().UnixNano(), 36),
	}
	if cfg.timeout > 0 {
		args = append(args, "--timeout", strconv.FormatInt(cfg.timeout.Milliseconds(), 10))
	}
	args = append(args, commandProperties(cfg.props)...)
	out, elapsed, cpu, err := b.runPerf(ctx, consumerPerfClass, cfg, args)
	if err != nil {
		return PerfResult{}, err
	}
	res, err := parseConsumerPerf(out)
	res.Elapsed, res.CPU = elapsed, cpu
	if err != nil {
		return res, fmt.Errorf("kafkabed: consumer perf on %q: %w", topic, err)
	}
	if res.Records < int64(messages) {
		return res, fmt.Errorf("kafkabed: consumer perf on %q consumed %d of %d records before its idle timeout",
			topic, res.Records, messages)
	}
	return res, nil
}

// writePayloads writes n payloads of size random capital letters, one a
// line (the tool's default --payload-delimiter), to dir once, and returns
// the file's path. The tool reads the file as UTF-8 text, so payloads are
// ASCII and hold no newline.
func writePayloads(dir string, size, n int) (string, error) {
	path := filepath.Join(dir, fmt.Sprintf("perf-payloads-%d-%d.txt", size, n))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	rng := rand.New(rand.NewPCG(uint64(size), uint64(n)))
	buf := make([]byte, 0, n*(size+1))
	for i := range n {
		if i > 0 {
			buf = append(buf, '\n')
		}
		for range size {
			buf = append(buf, byte('A'+rng.IntN(26)))
		}
	}
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		return "", fmt.Errorf("kafkabed: write perf payloads: %w", err)
	}
	return path, nil
}

// commandProperties renders props as one sorted --command-property list.
func commandProperties(props map[string]string) []string {
	if len(props) == 0 {
		return nil
	}
	kv := make([]string, 0, len(props))
	for k, v := range props {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return append([]string{"--command-property"}, kv...)
}

// runPerf runs a perf tool with WARN-level logging to tools.log in the
// broker's directory and returns its stdout, wall time and CPU time.
func (b *Broker) runPerf(ctx context.Context, mainClass string, cfg perfConfig, args []string) (string, time.Duration, time.Duration, error) {
	log4j, err := writeLog4j(b.dir, "tools", filepath.Join(b.dir, "tools.log"), "WARN")
	if err != nil {
		return "", 0, 0, err
	}
	spec := jvmSpec{java: b.java, libs: b.libs, heapMB: cfg.heapMB, mainClass: mainClass, args: args, log4j: log4j}
	began := time.Now()
	out, cpu, err := runToolCPU(ctx, b.dir, spec)
	if err != nil {
		err = fmt.Errorf("kafkabed: perf tool against %s: %w", b.bootstrap, err)
	}
	return out, time.Since(began), cpu, err
}

// producerSummary matches ProducerPerformance's final line, e.g.
// "2000 records sent, 933.27 records/sec (71.20 MB/sec), 279.38 ms avg
// latency, 467.00 ms max latency, 294 ms 50th, 370 ms 95th, 381 ms 99th,
// 388 ms 99.9th." Periodic progress lines lack the percentiles. With
// --warmup-records a second one follows: "1500 steady state records sent,
// ...".
var producerSummary = regexp.MustCompile(`(\d+)( steady state)? records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency, ([\d.]+) ms 50th, ([\d.]+) ms 95th, ([\d.]+) ms 99th, ([\d.]+) ms 99\.9th`)

// parseProducerPerf parses the last summary line of ProducerPerformance
// output, the steady-state one if there is one.
func parseProducerPerf(out string) (PerfResult, error) {
	all := producerSummary.FindAllStringSubmatch(out, -1)
	if len(all) == 0 {
		return PerfResult{}, fmt.Errorf("no summary line in ProducerPerformance output:\n%s", lastText(out))
	}
	m := all[len(all)-1]
	for _, c := range all {
		if c[2] != "" {
			m = c
		}
	}
	f := func(i int) float64 { v, _ := strconv.ParseFloat(m[i], 64); return v }
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return PerfResult{
		Records: n, RecordsPerSec: f(3), MBPerSec: f(4),
		AvgLatencyMs: f(5), MaxLatencyMs: f(6),
		P50Ms: f(7), P95Ms: f(8), P99Ms: f(9), P999Ms: f(10),
		Steady:  m[2] != "",
		Summary: m[0],
	}, nil
}

// parseConsumerPerf parses ConsumerPerformance's CSV-like output: a header
// line starting "start.time, end.time, data.consumed.in.MB, ..." and one
// value line. Columns are looked up by name, so added columns are harmless.
func parseConsumerPerf(out string) (PerfResult, error) {
	lines := strings.Split(strings.ReplaceAll(out, "\r", ""), "\n")
	for i, line := range lines {
		if !strings.HasPrefix(line, "start.time") {
			continue
		}
		header := strings.Split(line, ", ")
		for _, vline := range lines[i+1:] {
			values := strings.Split(vline, ", ")
			if len(values) != len(header) {
				continue // e.g. a WARNING line between header and values
			}
			col := map[string]float64{}
			for j, h := range header {
				if v, err := strconv.ParseFloat(strings.TrimSpace(values[j]), 64); err == nil {
					col[h] = v
				}
			}
			if _, ok := col["MB.sec"]; !ok {
				return PerfResult{}, fmt.Errorf("no MB.sec column in ConsumerPerformance output:\n%s", lastText(out))
			}
			return PerfResult{
				Records:            int64(col["data.consumed.in.nMsg"]),
				RecordsPerSec:      col["nMsg.sec"],
				MBPerSec:           col["MB.sec"],
				DataMB:             col["data.consumed.in.MB"],
				RebalanceMs:        col["rebalance.time.ms"],
				FetchMs:            col["fetch.time.ms"],
				FetchMBPerSec:      col["fetch.MB.sec"],
				FetchRecordsPerSec: col["fetch.nMsg.sec"],
				Summary:            line + "\n" + vline,
			}, nil
		}
	}
	return PerfResult{}, fmt.Errorf("no summary in ConsumerPerformance output:\n%s", lastText(out))
}
