package kafkabed

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseProducerPerf(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    PerfResult
		wantErr bool
	}{
		{
			name: "summary only",
			out:  "2000 records sent, 933.271115 records/sec (71.20 MB/sec), 279.38 ms avg latency, 467.00 ms max latency, 294 ms 50th, 370 ms 95th, 381 ms 99th, 388 ms 99.9th.\n",
			want: PerfResult{Records: 2000, RecordsPerSec: 933.271115, MBPerSec: 71.20, AvgLatencyMs: 279.38,
				MaxLatencyMs: 467, P50Ms: 294, P95Ms: 370, P99Ms: 381, P999Ms: 388},
		},
		{
			name: "progress lines precede the summary",
			out: "4375 records sent, 875.0 records/sec (66.76 MB/sec), 300.1 ms avg latency, 500.0 ms max latency.\n" +
				"9000 records sent, 900.5 records/sec (68.70 MB/sec), 290.00 ms avg latency, 510.00 ms max latency, 280 ms 50th, 400 ms 95th, 450 ms 99th, 505 ms 99.9th.\n",
			want: PerfResult{Records: 9000, RecordsPerSec: 900.5, MBPerSec: 68.70, AvgLatencyMs: 290,
				MaxLatencyMs: 510, P50Ms: 280, P95Ms: 400, P99Ms: 450, P999Ms: 505},
		},
		{
			name: "steady state after warm-up records",
			out: "Warmup first 500 records. Steady state results will print after the complete test summary.\n" +
				"2000 records sent, 933.271115 records/sec (71.20 MB/sec), 279.38 ms avg latency, 467.00 ms max latency, 294 ms 50th, 370 ms 95th, 381 ms 99th, 388 ms 99.9th.\n" +
				"1500 steady state records sent, 1000.500000 records/sec (76.33 MB/sec), 250.00 ms avg latency, 400.00 ms max latency, 240 ms 50th, 350 ms 95th, 380 ms 99th, 390 ms 99.9th.\n",
			want: PerfResult{Records: 1500, RecordsPerSec: 1000.5, MBPerSec: 76.33, AvgLatencyMs: 250,
				MaxLatencyMs: 400, P50Ms: 240, P95Ms: 350, P99Ms: 380, P999Ms: 390, Steady: true},
		},
		{name: "no summary", out: "Exception in thread main\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProducerPerf(tc.out)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			got.Summary = ""
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseConsumerPerf(t *testing.T) {
	const header = "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec\n"
	tests := []struct {
		name    string
		out     string
		want    PerfResult
		wantErr bool
	}{
		{
			name: "complete run",
			out:  header + "2026-11-25 21:09:09:445, 2026-11-25 21:09:11:773, 305.1758, 131.0893, 4000, 1718.2131, 666, 1662, 183.6196, 2406.7389\n",
			want: PerfResult{Records: 4000, RecordsPerSec: 1718.2131, MBPerSec: 131.0893, DataMB: 305.1758,
				RebalanceMs: 666, FetchMs: 1662, FetchMBPerSec: 183.6196, FetchRecordsPerSec: 2406.7389},
		},
		{
			name: "idle timeout warning between header and values",
			out: header + "WARNING: Exiting before consuming the expected number of records: timeout (3000 ms) exceeded. You can use the --timeout option to increase the timeout.\n" +
				"2026-11-25 21:09:12:987, 2026-11-25 21:09:17:711, 305.1758, 64.6011, 4000, 846.7401, 339, 4385, 69.5954, 912.2007\n",
			want: PerfResult{Records: 4000, RecordsPerSec: 846.7401, MBPerSec: 64.6011, DataMB: 305.1758,
				RebalanceMs: 339, FetchMs: 4385, FetchMBPerSec: 69.5954, FetchRecordsPerSec: 912.2007},
		},
		{name: "header without values", out: header, wantErr: true},
		{name: "nothing", out: "", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseConsumerPerf(tc.out)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			got.Summary = ""
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestCommandProperties(t *testing.T) {
	if got := commandProperties(nil); got != nil {
		t.Fatalf("empty props: got %q", got)
	}
	got := commandProperties(map[string]string{"linger.ms": "5", "acks": "all"})
	want := []string{"--command-property", "acks=all", "linger.ms=5"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestNewClusterID(t *testing.T) {
	for range 200 {
		id, err := newClusterID()
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 22 || strings.HasPrefix(id, "-") || strings.ContainsAny(id, "+/=") {
			t.Fatalf("bad cluster id %q", id)
		}
	}
}
