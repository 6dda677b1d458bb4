package kafkabed

import (
	"context"
	"testing"
	"time"
)

// StartTimeout bounds StartBrokerT and StartMirrorMakerT. Brokers and
// MirrorMaker are ready in seconds; the margin absorbs a loaded CI machine
// and a cold JIT.
const StartTimeout = 3 * time.Minute

// Must fails the test immediately (t.Fatal) if err is not nil:
//
//	lat, err := mm.WaitReplication(ctx, "alerts")
//	kafkabed.Must(t, err)
func Must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// StartBrokerT starts a broker for the test and stops it in t.Cleanup. It
// never skips: missing jars or a broker that does not come up fail the test
// (the message says to run `make kafka`). Progress goes to t.Logf unless an
// option says otherwise.
func StartBrokerT(t testing.TB, opts ...Option) *Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	b, err := StartBroker(ctx, append([]Option{WithLogf(t.Logf)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Stop(); err != nil {
			t.Error(err)
		}
	})
	return b
}

// StartMirrorMakerT starts MirrorMaker 2 from source to target for the test
// and stops it in t.Cleanup (which runs before the brokers' cleanups, as
// cleanups run last-in first-out). It never skips.
func StartMirrorMakerT(t testing.TB, source, target *Broker, opts ...MirrorOption) *MirrorMaker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	m, err := StartMirrorMaker(ctx, source, target, append([]MirrorOption{WithMirrorLogf(t.Logf)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Stop(); err != nil {
			t.Error(err)
		}
	})
	return m
}
