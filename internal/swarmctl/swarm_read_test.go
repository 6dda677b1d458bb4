package swarmctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/docker/docker/client"
)

// TestSwarmTellsGoneFromUnreadable answers SwarmInspect as Docker does for
// an engine without a swarm (503) and checks that only an engine that says
// it is in no swarm, or only a worker, is ErrNotInSwarm: one whose swarm is
// still starting, or that does not answer /info, is not, so that a refresh
// during a dockerd restart keeps the swarm in state.
func TestSwarmTellsGoneFromUnreadable(t *testing.T) {
	for _, tc := range []struct {
		name    string
		info    string // body of GET /info; "" answers 500
		notHere bool
	}{
		{"inactive", `{"Swarm":{"LocalNodeState":"inactive"}}`, true},
		{"worker", `{"Swarm":{"LocalNodeState":"active","ControlAvailable":false}}`, true},
		{"pending", `{"Swarm":{"LocalNodeState":"pending"}}`, false},
		{"error", `{"Swarm":{"LocalNodeState":"error"}}`, false},
		{"locked", `{"Swarm":{"LocalNodeState":"locked"}}`, false},
		{"info fails", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			engine := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				switch {
				case strings.HasSuffix(r.URL.Path, "/swarm"):
					w.WriteHeader(http.StatusServiceUnavailable)
					fmt.Fprint(w, `{"message":"This node is not a swarm manager."}`)
				case strings.HasSuffix(r.URL.Path, "/info") && tc.info != "":
					fmt.Fprint(w, tc.info)
				default:
					w.WriteHeader(http.StatusInternalServerError)
					fmt.Fprint(w, `{"message":"daemon starting"}`)
				}
			}))
			defer engine.Close()
			cli, err := client.NewClientWithOpts(client.WithHost("tcp://"+strings.TrimPrefix(engine.URL, "http://")), client.WithVersion("1.41"))
			if err != nil {
				t.Fatal(err)
			}
			m := &Manager{cli: cli, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			_, err = m.Swarm(context.Background())
			if err == nil {
				t.Fatal("no error from an engine without a swarm")
			}
			if got := errors.Is(err, ErrNotInSwarm); got != tc.notHere {
				t.Errorf("errors.Is(%v, ErrNotInSwarm) = %v, want %v", err, got, tc.notHere)
			}
		})
	}
	t.Run("no engine", func(t *testing.T) {
		cli, err := client.NewClientWithOpts(client.WithHost("tcp://127.0.0.1:1"), client.WithVersion("1.41"))
		if err != nil {
			t.Fatal(err)
		}
		m := &Manager{cli: cli, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		if _, err := m.Swarm(context.Background()); err == nil || errors.Is(err, ErrNotInSwarm) {
			t.Errorf("an engine that does not answer: %v, want an error that is not ErrNotInSwarm", err)
		}
	})
}
