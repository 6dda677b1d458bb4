package timing

import "time"

// The 2018 prototype's figures, shown beside ours in every report.
const (
	// OriginalProducerVisitMax is the longest time the prototype's
	// producer took to send one visit of ~10,000 alerts.
	OriginalProducerVisitMax = 15760 * time.Millisecond
	// OriginalFilterLagMean is the prototype's mean filter lag.
	OriginalFilterLagMean = 250 * time.Millisecond
	// OriginalConsumerLatencyMean is the prototype's mean time from the
	// start of a visit to the 20th filtered alert at a consumer.
	OriginalConsumerLatencyMean = 5280 * time.Millisecond
)

// The write-up's fourth measure, from the producer starting a visit to
// each filter finishing it (FilterDone), has no figure recorded in this
// repository: reports show "-" for the original there.

// Report holds the timing figures of a run, per visit and summarised.
type Report struct {
	// Visits in ascending visit order, incomplete ones included.
	Visits []Visit
	// Producer summarises the send time over complete visits.
	Producer Summary
	// FilterLag summarises filter lags over complete visits × filters.
	FilterLag Summary
	// ConsumerLatency summarises consumer latencies over complete
	// visits × consumers.
	ConsumerLatency Summary
	// FilterDone summarises, over complete visits × filters, the time from
	// the producer starting a visit to the filter finishing it (the
	// write-up's fourth measure); its max is the worst visit's last filter,
	// which must stay under the visit interval to keep up.
	FilterDone Summary
	// Throughput summarises the producer's MB/s over complete visits with
	// a positive send time.
	Throughput RateSummary
	// Filters and Consumers summarise each filter and consumer over the
	// complete visits, sorted by name (then source).
	Filters   []FilterSummary
	Consumers []ConsumerSummary
	// Quarantines lists each filter quarantined for a visit, by visit then
	// filter.
	Quarantines []Quarantine
	Totals      Totals
	// Warnings note what was merged, skipped or looks wrong (negative
	// lags from skewed clocks, invalid events...).
	Warnings []string
}

// Visit holds the figures of one visit.
type Visit struct {
	Visit int64
	Run   string // producer run id(s), comma-separated when several
	// Complete is true when the visit has a produce event, or filter
	// events with the record timestamps of an upstream visit (Upstream);
	// without either, Send, lags and latencies are unknown (zero) and the
	// visit is left out of the summaries.
	Complete bool
	// Upstream is true for a visit timed by its alerts' record timestamps
	// (filter events' Start and Sent): its alerts came from an upstream
	// stream, with no produce event. Start and End are then the earliest
	// and latest of those, Alerts and Bytes what the filters read.
	Upstream  bool
	Producers int       // produce events merged into this visit
	Start     time.Time // earliest produce start
	End       time.Time // latest produce end
	Send      time.Duration
	Alerts    int     // alerts sent by the producer (upstream visits: the most one filter read)
	Bytes     int64   // bytes sent by the producer (upstream visits: likewise)
	MBps      float64 // Bytes / 10^6 / Send in seconds; 0 if Send <= 0
	// FiltersFinished is the number of filters that reported the visit,
	// Consumers the number of consumers that received any of its alerts.
	FiltersFinished int
	ConsumerCount   int
	Selected        int     // alerts selected by all filters together
	DeadLetters     int     // dead letters of all stages for this visit
	Lag             Summary // over this visit's filters (complete visits)
	Done            Summary // FilterVisit.Done over this visit's filters (complete visits)
	Latency         Summary // over this visit's consumers (complete visits)
	Filters         []FilterVisit
	Consumers       []ConsumerVisit
}

// FilterVisit is one filter's work on one visit.
type FilterVisit struct {
	Name        string
	End         time.Time     // last alert of the visit processed
	Lag         time.Duration // End - produce End; 0 when the visit is incomplete
	Done        time.Duration // End - produce Start; 0 when the visit is incomplete
	Alerts      int           // alerts read
	Matched     int           // alerts matching before the cap
	Selected    int           // alerts written
	DeadLetters int
	Events      int // filter events merged (1 normally)
	// Errors counts CEL runtime errors by kind; Skipped the alerts not
	// evaluated while the filter was quarantined, which Quarantined says.
	Errors      map[string]int
	Skipped     int
	Quarantined bool
}

// ConsumerVisit is one consumer's reception of one visit.
type ConsumerVisit struct {
	Name     string
	Source   string        // the filter topic read
	Received int           // consume events (alerts received)
	Rank     int           // highest rank received
	Arrived  time.Time     // arrival of the alert of highest rank
	Latency  time.Duration // Arrived - produce Start; 0 when incomplete
	// DeadLetters reported by the consumer for this visit.
	DeadLetters int
}

// FilterSummary is one filter over the complete visits.
type FilterSummary struct {
	Name        string
	Visits      int // complete visits the filter reported
	Lag         Summary
	Done        Summary // from the start of each visit to the filter finishing it
	Alerts      int
	Matched     int
	Selected    int
	DeadLetters int
	// Errors by kind, alerts skipped and visits quarantined, over every
	// visit the filter reported (complete or not).
	Errors            map[string]int
	Skipped           int
	QuarantinedVisits int
}

// Quarantine is a filter quarantined for a visit (a quarantine event).
type Quarantine struct {
	Filter string
	Visit  int64
	At     time.Time
	Reason string
}

// ConsumerSummary is one consumer over the complete visits.
type ConsumerSummary struct {
	Name        string
	Source      string
	Visits      int
	Latency     Summary
	Received    int
	DeadLetters int
}

// Totals are counts over all events and visits.
type Totals struct {
	Visits           int     // distinct visits seen in any event
	Complete         int     // visits with a produce event, or timed by their record timestamps (Upstream)
	Upstream         int     // of those, visits timed by their record timestamps
	Incomplete       int     // visits without one
	IncompleteVisits []int64 // their numbers, ascending
	Alerts           int     // alerts sent by the producer, or read from upstream
	Bytes            int64   // their bytes
	Selected         int     // alerts selected by the filters
	Received         int     // alerts received by the consumers
	Filters          int     // distinct filter names
	Consumers        int     // distinct consumer (name, source) pairs
	DeadLetters      DeadLetters
	NegativeLags     int // filter lags below zero (clock skew)
	InvalidEvents    int // events skipped because Validate failed
	Runs             []string
}

// DeadLetters counts dead letters by stage.
type DeadLetters struct {
	Produce int
	Filter  int
	Consume int
	Total   int
}
