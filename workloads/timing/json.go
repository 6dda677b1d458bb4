package timing

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// WriteJSON writes the report as one indented JSON object. Durations are
// seconds (float64), times RFC 3339 with nanoseconds. The keys are stable:
//
//	totals:    visits, complete_visits, incomplete_visits,
//	           incomplete_visit_ids [int], alerts, bytes, selected, received,
//	           filters, consumers, negative_lags, invalid_events, runs [string],
//	           dead_letters {produce, filter, consume, total}
//	summary:   producer_send_s, filter_lag_s, consumer_latency_s,
//	           filter_done_s (from the start of a visit to a filter
//	           finishing it): a summary {n, mean, p50, p99, max, min} in
//	           seconds (nearest-rank percentiles; all 0 when n is 0);
//	           throughput_mb_per_s: the same in MB/s (10^6 bytes per second)
//	original:  producer_send_max_s (15.76), filter_lag_mean_s (0.25),
//	           consumer_latency_mean_s (5.28): the 2018 prototype's figures
//	comparison: [{label, original_s (null when no 2018 figure is recorded),
//	           ours_s (null without data)}]
//	filters:   [{name, visits, lag_s {summary}, done_s {summary}, alerts,
//	           matched, selected, dead_letters}]
//	consumers: [{name, source, visits, latency_s {summary}, received,
//	           dead_letters}]
//	visits:    [{visit, run, complete, producers, start, end, send_s,
//	           alerts, bytes, mb_per_s, filters_finished, consumers, selected,
//	           dead_letters, lag_s {summary}, done_s {summary},
//	           latency_s {summary},
//	           filter_details [{name, end, lag_s, done_s, alerts, matched,
//	           selected, dead_letters, events}],
//	           consumer_details [{name, source, received, rank, arrived,
//	           latency_s, dead_letters}]}]
//	           (for an incomplete visit start, end, send_s, mb_per_s, lag_s,
//	           done_s, latency_s and the per-filter lag_s and done_s /
//	           per-consumer latency_s are null)
//	warnings:  [string]
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r.jsonReport()); err != nil {
		return fmt.Errorf("writing timing JSON: %w", err)
	}
	return nil
}

type jsonReport struct {
	Totals      jsonTotals       `json:"totals"`
	Summary     jsonSummaries    `json:"summary"`
	Original    jsonOriginal     `json:"original"`
	Comparison  []jsonComparison `json:"comparison"`
	Filters     []jsonFilter     `json:"filters"`
	Quarantines []jsonQuarantine `json:"quarantines"`
	Consumers   []jsonConsumer   `json:"consumers"`
	Visits      []jsonVisit      `json:"visits"`
	Warnings    []string         `json:"warnings"`
}

type jsonTotals struct {
	Visits             int             `json:"visits"`
	Complete           int             `json:"complete_visits"`
	Upstream           int             `json:"upstream_visits"`
	Incomplete         int             `json:"incomplete_visits"`
	IncompleteVisitIDs []int64         `json:"incomplete_visit_ids"`
	Alerts             int             `json:"alerts"`
	Bytes              int64           `json:"bytes"`
	Selected           int             `json:"selected"`
	Received           int             `json:"received"`
	Filters            int             `json:"filters"`
	Consumers          int             `json:"consumers"`
	NegativeLags       int             `json:"negative_lags"`
	InvalidEvents      int             `json:"invalid_events"`
	Runs               []string        `json:"runs"`
	DeadLetters        jsonDeadLetters `json:"dead_letters"`
}

type jsonDeadLetters struct {
	Produce int `json:"produce"`
	Filter  int `json:"filter"`
	Consume int `json:"consume"`
	Total   int `json:"total"`
}

type jsonSummary struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Min  float64 `json:"min"`
}

type jsonSummaries struct {
	Producer        jsonSummary `json:"producer_send_s"`
	FilterLag       jsonSummary `json:"filter_lag_s"`
	ConsumerLatency jsonSummary `json:"consumer_latency_s"`
	FilterDone      jsonSummary `json:"filter_done_s"`
	Throughput      jsonSummary `json:"throughput_mb_per_s"`
}

type jsonOriginal struct {
	ProducerSendMax     float64 `json:"producer_send_max_s"`
	FilterLagMean       float64 `json:"filter_lag_mean_s"`
	ConsumerLatencyMean float64 `json:"consumer_latency_mean_s"`
}

type jsonComparison struct {
	Label    string   `json:"label"`
	Original *float64 `json:"original_s"`
	Ours     *float64 `json:"ours_s"`
}

type jsonFilter struct {
	Name        string      `json:"name"`
	Visits      int         `json:"visits"`
	Lag         jsonSummary `json:"lag_s"`
	Done        jsonSummary `json:"done_s"`
	Alerts      int         `json:"alerts"`
	Matched     int         `json:"matched"`
	Selected    int         `json:"selected"`
	DeadLetters int         `json:"dead_letters"`
	// Errors by kind, alerts not evaluated and visits quarantined.
	Errors            map[string]int `json:"errors"`
	Skipped           int            `json:"skipped"`
	QuarantinedVisits int            `json:"quarantined_visits"`
}

type jsonQuarantine struct {
	Filter string    `json:"filter"`
	Visit  int64     `json:"visit"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

type jsonConsumer struct {
	Name        string      `json:"name"`
	Source      string      `json:"source"`
	Visits      int         `json:"visits"`
	Latency     jsonSummary `json:"latency_s"`
	Received    int         `json:"received"`
	DeadLetters int         `json:"dead_letters"`
}

type jsonVisit struct {
	Visit           int64               `json:"visit"`
	Run             string              `json:"run"`
	Complete        bool                `json:"complete"`
	Upstream        bool                `json:"upstream,omitempty"`
	Producers       int                 `json:"producers"`
	Start           *time.Time          `json:"start"`
	End             *time.Time          `json:"end"`
	Send            *float64            `json:"send_s"`
	Alerts          int                 `json:"alerts"`
	Bytes           int64               `json:"bytes"`
	MBps            *float64            `json:"mb_per_s"`
	FiltersFinished int                 `json:"filters_finished"`
	Consumers       int                 `json:"consumers"`
	Selected        int                 `json:"selected"`
	DeadLetters     int                 `json:"dead_letters"`
	Lag             *jsonSummary        `json:"lag_s"`
	Done            *jsonSummary        `json:"done_s"`
	Latency         *jsonSummary        `json:"latency_s"`
	FilterDetails   []jsonFilterVisit   `json:"filter_details"`
	ConsumerDetails []jsonConsumerVisit `json:"consumer_details"`
}

type jsonFilterVisit struct {
	Name        string         `json:"name"`
	End         time.Time      `json:"end"`
	Lag         *float64       `json:"lag_s"`
	Done        *float64       `json:"done_s"`
	Alerts      int            `json:"alerts"`
	Matched     int            `json:"matched"`
	Selected    int            `json:"selected"`
	DeadLetters int            `json:"dead_letters"`
	Events      int            `json:"events"`
	Errors      map[string]int `json:"errors,omitempty"`
	Skipped     int            `json:"skipped,omitempty"`
	Quarantined bool           `json:"quarantined,omitempty"`
}

type jsonConsumerVisit struct {
	Name        string    `json:"name"`
	Source      string    `json:"source"`
	Received    int       `json:"received"`
	Rank        int       `json:"rank"`
	Arrived     time.Time `json:"arrived"`
	Latency     *float64  `json:"latency_s"`
	DeadLetters int       `json:"dead_letters"`
}

func jsonSum(s Summary) jsonSummary {
	return jsonSummary{N: s.N, Mean: s.Mean.Seconds(), P50: s.P50.Seconds(), P99: s.P99.Seconds(), Max: s.Max.Seconds(), Min: s.Min.Seconds()}
}

func jsonRate(s RateSummary) jsonSummary {
	return jsonSummary{N: s.N, Mean: s.Mean, P50: s.P50, P99: s.P99, Max: s.Max, Min: s.Min}
}

func ptr[T any](v T) *T { return &v }

func (r Report) jsonReport() jsonReport {
	t := r.Totals
	out := jsonReport{
		Totals: jsonTotals{
			Visits: t.Visits, Complete: t.Complete, Upstream: t.Upstream, Incomplete: t.Incomplete,
			IncompleteVisitIDs: nonNil(t.IncompleteVisits),
			Alerts:             t.Alerts, Bytes: t.Bytes, Selected: t.Selected, Received: t.Received,
			Filters: t.Filters, Consumers: t.Consumers,
			NegativeLags: t.NegativeLags, InvalidEvents: t.InvalidEvents,
			Runs:        nonNil(t.Runs),
			DeadLetters: jsonDeadLetters(t.DeadLetters),
		},
		Summary: jsonSummaries{
			Producer:        jsonSum(r.Producer),
			FilterLag:       jsonSum(r.FilterLag),
			ConsumerLatency: jsonSum(r.ConsumerLatency),
			FilterDone:      jsonSum(r.FilterDone),
			Throughput:      jsonRate(r.Throughput),
		},
		Original: jsonOriginal{
			ProducerSendMax:     OriginalProducerVisitMax.Seconds(),
			FilterLagMean:       OriginalFilterLagMean.Seconds(),
			ConsumerLatencyMean: OriginalConsumerLatencyMean.Seconds(),
		},
		Comparison:  []jsonComparison{},
		Filters:     []jsonFilter{},
		Quarantines: []jsonQuarantine{},
		Consumers:   []jsonConsumer{},
		Visits:      []jsonVisit{},
		Warnings:    nonNil(r.Warnings),
	}
	for _, c := range r.comparisons() {
		jc := jsonComparison{Label: c.label}
		if c.known {
			jc.Original = ptr(c.original.Seconds())
		}
		if c.n > 0 {
			jc.Ours = ptr(c.ours.Seconds())
		}
		out.Comparison = append(out.Comparison, jc)
	}
	for _, f := range r.Filters {
		out.Filters = append(out.Filters, jsonFilter{Name: f.Name, Visits: f.Visits, Lag: jsonSum(f.Lag), Done: jsonSum(f.Done),
			Alerts: f.Alerts, Matched: f.Matched, Selected: f.Selected, DeadLetters: f.DeadLetters,
			Errors: nonNilMap(f.Errors), Skipped: f.Skipped, QuarantinedVisits: f.QuarantinedVisits})
	}
	for _, q := range r.Quarantines {
		out.Quarantines = append(out.Quarantines, jsonQuarantine{Filter: q.Filter, Visit: q.Visit, At: q.At, Reason: q.Reason})
	}
	for _, c := range r.Consumers {
		out.Consumers = append(out.Consumers, jsonConsumer{Name: c.Name, Source: c.Source, Visits: c.Visits,
			Latency: jsonSum(c.Latency), Received: c.Received, DeadLetters: c.DeadLetters})
	}
	for _, v := range r.Visits {
		jv := jsonVisit{
			Visit: v.Visit, Run: v.Run, Complete: v.Complete, Upstream: v.Upstream, Producers: v.Producers,
			Alerts: v.Alerts, Bytes: v.Bytes, FiltersFinished: v.FiltersFinished, Consumers: v.ConsumerCount,
			Selected: v.Selected, DeadLetters: v.DeadLetters,
			FilterDetails: []jsonFilterVisit{}, ConsumerDetails: []jsonConsumerVisit{},
		}
		if v.Complete {
			jv.Start, jv.End = ptr(v.Start), ptr(v.End)
			jv.Send, jv.MBps = ptr(v.Send.Seconds()), ptr(v.MBps)
			jv.Lag, jv.Done, jv.Latency = ptr(jsonSum(v.Lag)), ptr(jsonSum(v.Done)), ptr(jsonSum(v.Latency))
		}
		for _, f := range v.Filters {
			jf := jsonFilterVisit{Name: f.Name, End: f.End, Alerts: f.Alerts, Matched: f.Matched,
				Selected: f.Selected, DeadLetters: f.DeadLetters, Events: f.Events,
				Errors: f.Errors, Skipped: f.Skipped, Quarantined: f.Quarantined}
			if v.Complete {
				jf.Lag, jf.Done = ptr(f.Lag.Seconds()), ptr(f.Done.Seconds())
			}
			jv.FilterDetails = append(jv.FilterDetails, jf)
		}
		for _, c := range v.Consumers {
			jc := jsonConsumerVisit{Name: c.Name, Source: c.Source, Received: c.Received, Rank: c.Rank,
				Arrived: c.Arrived, DeadLetters: c.DeadLetters}
			if v.Complete {
				jc.Latency = ptr(c.Latency.Seconds())
			}
			jv.ConsumerDetails = append(jv.ConsumerDetails, jc)
		}
		out.Visits = append(out.Visits, jv)
	}
	return out
}

// nonNil turns a nil slice into an empty one, so JSON shows [] not null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func nonNilMap(m map[string]int) map[string]int {
	if m == nil {
		return map[string]int{}
	}
	return m
}
