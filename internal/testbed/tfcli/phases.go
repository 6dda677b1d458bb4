package tfcli

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/minibroker/terraform-provider-minibroker/internal/awsfleet"
	"github.com/minibroker/terraform-provider-minibroker/internal/swarmctl"
)

// ResourceEvent is when Terraform said it started and finished a resource.
type ResourceEvent struct {
	Addr        string
	Start, Done time.Duration // since the command started; Done 0 if it never finished
	Took        string        // as Terraform printed it
}

// The lines where Terraform starts and finishes a resource, in an apply
// and in a destroy.
var (
	reStarting = regexp.MustCompile(`^(\S+): (?:Creating\.\.\.|Destroying\.\.\. \[id=.*\])$`)
	reFinished = regexp.MustCompile(`^(\S+): (?:Creation|Destruction) complete after (\S+)`)
)

// Phases is what an apply or destroy of a minibroker layout spent its time
// on, all times since the command started.
type Phases struct {
	Events     []ResourceEvent // in the order the resources started
	FirstStart time.Duration   // the first resource started: CLI start-up, refresh and plan before it
	SwarmStart time.Duration   // minibroker_swarm started
	SwarmDone  time.Duration   // minibroker_swarm finished
	LastDone   time.Duration   // the last other resource (mirror, filter group) finished
	Total      time.Duration   // the command's wall time
	// From the provider's log (0 when it does not say): when the last
	// service create call was made; when the swarm was initialised on the
	// manager (every host answered over SSH by then); on EC2, when the
	// first and the last RunInstances call returned.
	LastCreate, SwarmInit       time.Duration
	FirstInstance, LastInstance time.Duration
}

// PhasesOf reads the phases of an apply or destroy from its output and its
// provider log.
func PhasesOf(r Run) Phases {
	p := resourcePhases(r)
	last := func(ts []time.Duration) time.Duration {
		if len(ts) == 0 {
			return 0
		}
		return ts[len(ts)-1]
	}
	p.LastCreate = last(ProviderLogTimes(r, swarmctl.LogCreateService))
	p.SwarmInit = last(ProviderLogTimes(r, swarmctl.LogInitSwarm))
	if started := ProviderLogTimes(r, awsfleet.LogInstanceStarted); len(started) > 0 {
		p.FirstInstance, p.LastInstance = started[0], last(started)
	}
	return p
}

// resourcePhases is the part of Phases that Terraform's output tells.
func resourcePhases(r Run) Phases {
	by := map[string]*ResourceEvent{}
	var order []string
	for _, l := range r.Lines {
		if m := reStarting.FindStringSubmatch(l.Text); m != nil {
			by[m[1]] = &ResourceEvent{Addr: m[1], Start: l.At}
			order = append(order, m[1])
		} else if m := reFinished.FindStringSubmatch(l.Text); m != nil && by[m[1]] != nil {
			by[m[1]].Done, by[m[1]].Took = l.At, m[2]
		}
	}
	p := Phases{Total: r.Took, FirstStart: -1}
	for _, a := range order {
		e := *by[a]
		p.Events = append(p.Events, e)
		if p.FirstStart < 0 || e.Start < p.FirstStart {
			p.FirstStart = e.Start
		}
		if strings.Contains(a, "minibroker_swarm.") {
			p.SwarmStart, p.SwarmDone = e.Start, e.Done
		} else {
			p.LastDone = max(p.LastDone, e.Done)
		}
	}
	return p
}

// Span returns the shortest and longest time, start to finish, of the
// finished resources whose address contains kind ("minibroker_mirror."),
// and how many there were.
func (p Phases) Span(kind string) (lo, hi time.Duration, n int) {
	for _, e := range p.Events {
		if !strings.Contains(e.Addr, kind) || e.Done == 0 {
			continue
		}
		d := e.Done - e.Start
		if n == 0 || d < lo {
			lo = d
		}
		hi = max(hi, d)
		n++
	}
	return lo, hi, n
}

// ProviderLogTimes returns when, since the run began and in order, the
// provider logged msg (TF_LOG_PROVIDER=INFO writes lines such as
// "<RFC 3339 time> [INFO]  provider.terraform-provider-minibroker: creating service: ...").
func ProviderLogTimes(r Run, msg string) []time.Duration {
	b, err := os.ReadFile(r.ProviderLog)
	if err != nil {
		return nil
	}
	var out []time.Duration
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.Contains(l, ": "+msg+":") {
			continue
		}
		ts, _, _ := strings.Cut(l, " ")
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			out = append(out, t.Sub(r.Began))
		}
	}
	slices.Sort(out)
	return out
}
