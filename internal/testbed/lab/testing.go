package lab

import (
	"context"
	"strings"
	"testing"
	"time"
)

// ForTest starts a lab of the given number of nodes (0 for an empty lab, to
// which the test adds nodes with AddNode) for a test and closes it in
// t.Cleanup. It skips the test only under `go test -short`; when not root
// or a tool is missing it fails the test (saying what to install), because a
// skipped integration test would hide that nothing was tested.
func ForTest(t testing.TB, nodes int) *Lab {
	t.Helper()
	if testing.Short() {
		t.Skip("lab: needs root, dockerd and sshd; skipped under -short")
	}
	if err := CheckPrereqs(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := Start(ctx, Options{Nodes: nodes, LogWriter: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, nd := range l.Nodes() {
				t.Logf("lab: last lines of %s dockerd.log:\n%s", nd.Name, tail(nd.Dir, "dockerd.log", 20))
			}
		}
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

// testLog turns the lab's progress messages into t.Log lines.
type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
