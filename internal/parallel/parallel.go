// Package parallel runs one function over many items with bounded
// concurrency, the way the provider talks to many nodes, services or
// instances at once.
package parallel

import (
	"context"
	"errors"
	"sync"
)

// ForEach runs fn for every item, at most limit at a time, waits for all of
// them and returns their errors joined (nil when every call succeeded). A
// failing call does not stop the others: each item gets its chance, and the
// error names every item that failed.
func ForEach[T any](ctx context.Context, limit int, items []T, fn func(context.Context, T) error) error {
	sem := make(chan struct{}, max(limit, 1))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, it := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, it); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
