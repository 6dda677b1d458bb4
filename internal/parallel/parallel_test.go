package parallel

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestForEachBoundsConcurrencyAndJoinsErrors(t *testing.T) {
	var running, most atomic.Int32
	items := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	err := ForEach(context.Background(), 3, items, func(_ context.Context, i int) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
		if i%4 == 0 {
			return errors.New("item " + string(rune('0'+i)))
		}
		return nil
	})
	if most.Load() > 3 {
		t.Errorf("%d calls ran at once, limit 3", most.Load())
	}
	if err == nil || !strings.Contains(err.Error(), "item 4") || !strings.Contains(err.Error(), "item 8") {
		t.Errorf("error %v, want items 4 and 8 named", err)
	}
	if err := ForEach(context.Background(), 3, items, func(context.Context, int) error { return nil }); err != nil {
		t.Errorf("all succeeded, got %v", err)
	}
}
