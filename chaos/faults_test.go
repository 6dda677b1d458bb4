package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/kafkabed"
)

// fault is one kind of failure the suite injects.
type fault struct {
	name string
	// strikeWithin is how long after a visit starts the fault may strike
	// (uniformly at random): while that stage is busy with the visit.
	strikeWithin time.Duration
	// inject breaks the part and returns once it runs again (processes
	// come back by their supervisor: inject returns after the kill).
	inject func(ctx context.Context, b *bed, rng *rand.Rand) error
}

// downFor is how long a killed or stopped broker or MirrorMaker stays down.
func downFor(rng *rand.Rand) time.Duration {
	return 500*time.Millisecond + time.Duration(rng.Int64N(int64(1500*time.Millisecond)))
}

var faults = []fault{
	{name: "SIGKILL isolated filter", strikeWithin: 600 * time.Millisecond,
		inject: func(_ context.Context, b *bed, rng *rand.Rand) error {
			return b.filters[isolatedNames()[rng.IntN(len(isolatedNames()))]].kill()
		}},
	{name: "SIGKILL shared filter", strikeWithin: 600 * time.Millisecond,
		inject: func(_ context.Context, b *bed, _ *rand.Rand) error { return b.filters[sharedProcess].kill() }},
	{name: "SIGKILL consumer", strikeWithin: 800 * time.Millisecond,
		inject: func(_ context.Context, b *bed, rng *rand.Rand) error {
			return b.consumers[filters[rng.IntN(len(filters))].name].kill()
		}},
	{name: "SIGTERM filter (clean restart)", strikeWithin: 600 * time.Millisecond,
		inject: func(_ context.Context, b *bed, rng *rand.Rand) error {
			names := append(isolatedNames(), sharedProcess)
			return b.filters[names[rng.IntN(len(names))]].terminate()
		}},
	{name: "SIGTERM consumer (clean restart)", strikeWithin: 800 * time.Millisecond,
		inject: func(_ context.Context, b *bed, rng *rand.Rand) error {
			return b.consumers[filters[rng.IntN(len(filters))].name].terminate()
		}},
	{name: "SIGKILL MirrorMaker 2", strikeWithin: 400 * time.Millisecond,
		inject: func(ctx context.Context, b *bed, rng *rand.Rand) error {
			b.mm.Kill()
			if err := sleepCtx(ctx, downFor(rng)); err != nil {
				return err
			}
			return b.mm.Restart(ctx)
		}},
	{name: "SIGKILL mirror broker", strikeWithin: 400 * time.Millisecond,
		inject: func(ctx context.Context, b *bed, rng *rand.Rand) error {
			b.mirror.Kill()
			return restartAfter(ctx, b.mirror, rng)
		}},
	{name: "clean restart of mirror broker", strikeWithin: 400 * time.Millisecond,
		inject: func(ctx context.Context, b *bed, rng *rand.Rand) error {
			if err := b.mirror.Shutdown(); err != nil {
				return err
			}
			return restartAfter(ctx, b.mirror, rng)
		}},
	{name: "SIGKILL hub broker", strikeWithin: 150 * time.Millisecond,
		inject: func(ctx context.Context, b *bed, rng *rand.Rand) error {
			b.hub.Kill()
			return restartAfter(ctx, b.hub, rng)
		}},
	{name: "clean restart of hub broker", strikeWithin: 150 * time.Millisecond,
		inject: func(ctx context.Context, b *bed, rng *rand.Rand) error {
			if err := b.hub.Shutdown(); err != nil {
				return err
			}
			return restartAfter(ctx, b.hub, rng)
		}},
}

func restartAfter(ctx context.Context, broker *kafkabed.Broker, rng *rand.Rand) error {
	if err := sleepCtx(ctx, downFor(rng)); err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, kafkabed.StartTimeout)
	defer cancel()
	if err := broker.Restart(rctx); err != nil {
		return fmt.Errorf("restart broker: %w", err)
	}
	return nil
}

func isolatedNames() []string {
	var out []string
	for _, f := range filters {
		if !f.shared {
			out = append(out, f.name)
		}
	}
	return out
}

// injection is one fault as it happened.
type injection struct {
	fault  string
	visit  int64 // the visit it struck (its scheduled start, in ms)
	at     time.Time
	back   time.Time // when inject returned: the part runs again
	failed error
}

// schedule returns rounds × every fault, in a seeded random order.
func schedule(rounds int, rng *rand.Rand) []fault {
	var out []fault
	for range rounds {
		out = append(out, faults...)
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// nextVisit returns the start of the first visit after t: the producer
// starts visits at multiples of the interval.
func nextVisit(t time.Time) time.Time {
	n := t.Truncate(visitInterval)
	if !n.After(t) {
		n = n.Add(visitInterval)
	}
	return n
}
