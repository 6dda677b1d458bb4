package motoserver

import (
	"context"
	"testing"
	"time"
)

// ForTest starts a moto server for a test and closes it in t.Cleanup. It
// skips the test only under `go test -short`; when moto is not installed it
// fails the test (saying to run `make moto`), because a skipped integration
// test would hide that nothing was tested. moto's output goes to t.Log only
// if the test fails (the last 50 lines).
func ForTest(t testing.TB) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("motoserver: runs moto_server; skipped under -short")
	}
	if _, err := Binary(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("motoserver: last lines of moto's output:\n%s", s.LogTail(50))
		}
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}
