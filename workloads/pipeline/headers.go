package pipeline

import (
	"strconv"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// intHeader and the readers below write and read the headers declared in
// package stream.
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
