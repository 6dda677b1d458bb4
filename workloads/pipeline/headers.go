package pipeline

import (
	"strconv"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Kafka headers the workloads put on messages. Alerts carry their place in
// the stream, so that a filter knows when it has read a whole visit; filtered
// alerts carry their rank, so that a consumer knows which one is the 20th.
const (
	HeaderRun   = "mb-run"   // producer run id
	HeaderVisit = "mb-visit" // visit id
	HeaderIndex = "mb-index" // index of the alert in its visit, from 0
	HeaderCount = "mb-count" // number of alerts in the visit
	HeaderRank  = "mb-rank"  // filtered alerts: 1-based rank within the visit
	HeaderID    = "mb-id"    // filtered alerts: the alert's id
	HeaderFrom  = "mb-filter"
)

func intHeader(key string, v int64) kafka.Header {
	return kafka.Header{Key: key, Value: strconv.AppendInt(nil, v, 10)}
}

// headerInt returns the integer value of header key, if present and valid.
func headerInt(hs []kafka.Header, key string) (int64, bool) {
	for _, h := range hs {
		if h.Key == key {
			v, err := strconv.ParseInt(string(h.Value), 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

func headerString(hs []kafka.Header, key string) string {
	for _, h := range hs {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
