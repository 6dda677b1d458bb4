package pipeline

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/minibroker/terraform-provider-minibroker/workloads/alert"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
)

// schemaRefreshEvery bounds how often an unknown schema id makes a filter
// re-read the schemas topic.
const schemaRefreshEvery = time.Second

// schemaBook keeps a filter's registry in step with the schemas topic that
// the producer writes and MirrorMaker copies.
type schemaBook struct {
	reg       *alert.Registry
	bootstrap string
	topic     string
	last      time.Time
}

// refresh reads the schemas topic again unless it did so very recently.
// It reports whether it read.
func (b *schemaBook) refresh(ctx context.Context) (bool, error) {
	if b.topic == "" || time.Since(b.last) < schemaRefreshEvery {
		return false, nil
	}
	b.last = time.Now()
	err := kclient.ReadAll(ctx, b.bootstrap, b.topic, func(m *kafka.Message) error {
		id, err := b.reg.AddJSON(string(m.Value))
		if err != nil {
			return fmt.Errorf("schema at %s: %w", m.TopicPartition, err)
		}
		if key := string(m.Key); key != strconv.FormatUint(uint64(id), 10) {
			return fmt.Errorf("schema at %s is keyed %q but its id is %d", m.TopicPartition, key, id)
		}
		return nil
	})
	return true, err
}
