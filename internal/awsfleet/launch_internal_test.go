package awsfleet

import (
	"testing"
	"time"
)

// What RunInstances returned for a slot's client token has ended when EC2
// lists it ended, or does not list it although it was launched long ago;
// one not listed yet that was just launched is new.
func TestEndedTellsNewFromGone(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	in := Instance{ID: "i-1", State: "pending", Launched: now.Add(-5 * time.Second)}
	running := in
	running.State, running.PrivateIP = "running", "10.0.0.7"
	terminated := in
	terminated.State = "terminated"
	old := in
	old.Launched = now.Add(-3 * time.Hour)
	for _, c := range []struct {
		name   string
		in     Instance
		listed []Instance
		want   Instance
		ended  bool
	}{
		{"just launched, not listed yet", in, nil, in, false},
		{"listed running", in, []Instance{running}, running, false},
		{"listed terminated", in, []Instance{terminated}, terminated, true},
		{"launched hours ago, no longer listed", old, nil, old, true},
		{"no launch time, not listed", Instance{ID: "i-2"}, nil, Instance{ID: "i-2"}, false},
	} {
		got, ended := ended(c.in, c.listed, now)
		if got != c.want || ended != c.ended {
			t.Errorf("%s: %+v, %v; want %+v, %v", c.name, got, ended, c.want, c.ended)
		}
	}
}
