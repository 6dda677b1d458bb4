package pipeline_test

import (
	"context"
	"sync"
	"testing"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/kafkabed"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// runReady runs each part (a filter, a consumer: a function given a
// context and the ready function to call once it has its partitions) in a
// goroutine of its own, and returns once every part is ready. stop ends
// them and returns the errors they returned.
func runReady(ctx context.Context, t *testing.T, parts ...func(ctx context.Context, ready func()) error) (stop func() []error) {
	t.Helper()
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	ready := make(chan struct{}, len(parts))
	errs := make(chan error, len(parts))
	for _, part := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := part(runCtx, func() { ready <- struct{}{} }); err != nil {
				errs <- err
			}
		}()
	}
	stop = func() []error {
		cancel()
		wg.Wait()
		close(errs)
		var out []error
		for err := range errs {
			out = append(out, err)
		}
		return out
	}
	for range parts {
		select {
		case <-ready:
		case err := <-errs:
			stop()
			t.Fatal(err)
		case <-ctx.Done():
			stop()
			t.Fatal("not ready in time")
		}
	}
	return stop
}

// ensureStreamTopics creates the stream's topics on a broker (one
// partition each) and any more, as a deployment has them.
func ensureStreamTopics(ctx context.Context, t *testing.T, bootstrap string, more ...kclient.Topic) {
	t.Helper()
	for _, tp := range append([]kclient.Topic{
		{Name: stream.AlertsTopic, Partitions: 1},
		{Name: stream.SchemasTopic, Partitions: 1, Compacted: true},
		{Name: stream.TimingTopic, Partitions: 1},
	}, more...) {
		kafkabed.Must(t, kclient.EnsureTopics(ctx, bootstrap, nil, tp))
	}
}
