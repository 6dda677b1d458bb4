package timing

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	if err := Build(testEvents()).WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if os.Getenv("TIMING_SHOW") != "" {
		t.Log("\n" + out)
	}
	for _, want := range []string{
		"Visits:       3 (2 complete, 1 incomplete: 3)",
		"Dead letters: 4 (produce 1, filter 2, consume 1)",
		// summary rows: N mean p50 p99 max min
		"producer visit send time (s)        2    14.000    12.000    16.000    16.000    12.000",
		"filter lag (s)                      4     0.198     0.200     0.300     0.300    -0.010",
		"20th alert at consumer (s)          4     5.250     5.000     6.000     6.000     4.500",
		"visit start to filter done (s)      4    14.197    12.300    16.300    16.300    12.200",
		// the comparison block with the original's figures
		"Compared with the 2018 prototype           original   this run",
		"producer visit send time (max)              15.76 s    16.00 s",
		"filter lag (mean)                            0.25 s     0.20 s",
		"20th alert at consumer (mean)                5.28 s     5.25 s",
		// the fourth measure: no 2018 figure recorded
		"visit start to filter done (mean)                 -    14.20 s",
		"visit start to filter done (max)                  -    16.30 s",
		// per visit
		"         1   10000     8.000   12.000    0.667       2    0.200    0.200    0.300   12.300     2    5.000    5.500       25     3",
		"         2   10000     8.000   16.000    0.500       2   -0.010   -0.010    0.300   16.300     2    4.500    6.000       23     0",
		"         3       -         -        -        -       1        -        -        -        -     1        -        -       20     1  incomplete: no produce event",
		"A           2    0.250    0.200    0.300    0.300    14.250    16.300        55        40     0",
		"cA <- A                 2    5.500    5.000    6.000    6.000        41     0",
		"filter lags are negative",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// An empty report still shows the original figures.
	buf.Reset()
	Build(nil).WriteTable(&buf)
	for _, want := range []string{"15.76 s", "0.25 s", "5.28 s", "visit start to filter done (max)                  -          -"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("empty table lacks %q", want)
		}
	}
}

func TestWriteJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := Build(testEvents()).WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	get := func(path ...any) any {
		var cur any = m
		for _, p := range path {
			switch k := p.(type) {
			case string:
				cur = cur.(map[string]any)[k]
			case int:
				cur = cur.([]any)[k]
			}
		}
		return cur
	}
	checks := []struct {
		path []any
		want any
	}{
		{[]any{"totals", "visits"}, 3.0},
		{[]any{"totals", "incomplete_visit_ids", 0}, 3.0},
		{[]any{"totals", "dead_letters", "total"}, 4.0},
		{[]any{"totals", "negative_lags"}, 1.0},
		{[]any{"summary", "producer_send_s", "max"}, 16.0},
		{[]any{"summary", "filter_lag_s", "mean"}, 0.1975},
		{[]any{"summary", "filter_lag_s", "min"}, -0.01},
		{[]any{"summary", "consumer_latency_s", "p99"}, 6.0},
		{[]any{"summary", "throughput_mb_per_s", "p50"}, 0.5},
		{[]any{"original", "producer_send_max_s"}, 15.76},
		{[]any{"original", "filter_lag_mean_s"}, 0.25},
		{[]any{"original", "consumer_latency_mean_s"}, 5.28},
		{[]any{"summary", "filter_done_s", "mean"}, 14.1975},
		{[]any{"summary", "filter_done_s", "max"}, 16.3},
		{[]any{"comparison", 0, "original_s"}, 15.76},
		{[]any{"comparison", 1, "ours_s"}, 0.1975},
		{[]any{"comparison", 3, "label"}, "visit start to filter done (mean)"},
		{[]any{"comparison", 3, "original_s"}, nil},
		{[]any{"comparison", 4, "ours_s"}, 16.3},
		{[]any{"filters", 0, "done_s", "mean"}, 14.25},
		{[]any{"visits", 0, "done_s", "max"}, 12.3},
		{[]any{"visits", 1, "filter_details", 1, "done_s"}, 15.99},
		{[]any{"visits", 2, "done_s"}, nil},
		{[]any{"visits", 2, "filter_details", 0, "done_s"}, nil},
		{[]any{"filters", 1, "name"}, "B"},
		{[]any{"consumers", 0, "latency_s", "mean"}, 5.5},
		{[]any{"visits", 0, "send_s"}, 12.0},
		{[]any{"visits", 0, "start"}, "2024-01-01T00:00:00Z"},
		{[]any{"visits", 1, "filter_details", 1, "lag_s"}, -0.01},
		{[]any{"visits", 1, "consumer_details", 0, "latency_s"}, 6.0},
		{[]any{"visits", 2, "complete"}, false},
		{[]any{"visits", 2, "send_s"}, nil},
		{[]any{"visits", 2, "lag_s"}, nil},
		{[]any{"visits", 2, "filter_details", 0, "lag_s"}, nil},
	}
	for _, c := range checks {
		if got := get(c.path...); got != c.want {
			t.Errorf("%v = %v, want %v", c.path, got, c.want)
		}
	}
	// An empty report has arrays, not nulls.
	buf.Reset()
	Build(nil).WriteJSON(&buf)
	for _, key := range []string{`"visits": []`, `"filters": []`, `"warnings": []`, `"runs": []`} {
		if !strings.Contains(buf.String(), key) {
			t.Errorf("empty JSON lacks %s", key)
		}
	}
}

func TestWriteHTML(t *testing.T) {
	for name, events := range map[string][]Event{"full": testEvents(), "empty": nil} {
		var buf bytes.Buffer
		if err := Build(events).WriteHTML(&buf); err != nil {
			t.Fatal(err)
		}
		page := buf.String()
		if out := os.Getenv("TIMING_HTML"); out != "" && name == "full" {
			os.WriteFile(out, buf.Bytes(), 0o644)
		}
		checkXML(t, name, page)
		for _, want := range []string{"<!DOCTYPE html>", "<svg", "</svg>", "<polyline", "15.76 s", "0.25 s", "5.28 s", "<title>Mini-broker timing report</title>"} {
			if name == "empty" && (want == "<polyline") {
				continue
			}
			if !strings.Contains(page, want) {
				t.Errorf("%s: page lacks %q", name, want)
			}
		}
		for _, banned := range []string{"<script", "http://", "https://", "<link", "@import"} {
			if strings.Contains(strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, ""), banned) {
				t.Errorf("%s: page is not self-contained: %q", name, banned)
			}
		}
		if name == "full" {
			for _, want := range []string{"producer send time", "20th alert at consumer (median)", "filters min–max", "2018: mean 0.25 s", `class="incomplete"`, "negative",
				"last filter done", "visit start to filter done (s)", "<td>14.197</td>", "visit start to filter done (max)", "no 2018 figure to compare", "<th>done max</th>"} {
				if !strings.Contains(page, want) {
					t.Errorf("page lacks %q", want)
				}
			}
			if n := strings.Count(page, "<svg"); n != 2 {
				t.Errorf("%d plots, want 2", n)
			}
		}
	}
}

// checkXML parses the page as strict XML: every element closed and nested
// properly, attributes quoted, entities known.
func checkXML(t *testing.T, name, page string) {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(page))
	dec.Strict = true
	var stack []string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: not well-formed: %v", name, err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			stack = append(stack, e.Name.Local)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) != 0 {
		t.Fatalf("%s: unclosed %v", name, stack)
	}
}
