package service_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/kafkabed"
	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/minibin"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry"
	"github.com/minibroker/terraform-provider-minibroker/workloads/registry/service"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// TestRegistryKilledMidRegistration runs `minibroker registry` as its own
// process on real Kafka and SIGKILLs it again and again while four
// clients (franz-go's schema-registry client, which this project did not
// write) register schemas, each schema by two clients, some under ids of
// their own; each kill is followed at once by a new process on the same
// port, after every 25 answers. A client retries what did not get an
// answer (the connection refused or cut, a 5xx), as the producer does. Afterwards every answer a
// client got must hold: each schema has one id, the one both its clients
// were told (the requested one where one was asked), served by that id;
// each subject's versions are 1..n without a gap or a schema twice; and
// the topic holds nothing a new registry cannot read.
func TestRegistryKilledMidRegistration(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Java and the Kafka jars (make kafka); run without -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	broker := kafkabed.StartBrokerT(t)
	dir := t.TempDir()
	reg := &registryProcess{bin: minibin.Build(t, dir), bootstrap: broker.Bootstrap(), addr: freeLoopbackAddr(t),
		log: filepath.Join(dir, "registry.log")}
	t.Cleanup(reg.kill)
	if err := reg.start(ctx); err != nil {
		t.Fatal(err)
	}
	client, err := sr.NewClient(sr.URLs("http://"+reg.addr), sr.HTTPClient(&http.Client{Timeout: 10 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}

	// 300 schemas over three subjects; every fourth asks for an id.
	type job struct {
		subject, text string
		id            int // asked for; 0: the registry's rule
	}
	var jobs []job
	for i := range 300 {
		j := job{subject: fmt.Sprintf("s%d-value", i%3),
			text: fmt.Sprintf(`{"type":"record","name":"r%d","fields":[{"name":"f%d","type":"int"}]}`, i, i)}
		if i%4 == 0 {
			j.id = 70000 + i
		}
		jobs = append(jobs, j)
	}
	const clients = 4
	got := make([][]int, clients) // by client, the id each job got (two clients per job)
	retries := make([]int, clients)
	cut := make([]int, clients) // requests cut by a kill, not refused by a registry not yet up
	var answered atomic.Int64
	var wg sync.WaitGroup
	for c := range clients {
		got[c] = make([]int, len(jobs))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, j := range jobs {
				if i%clients != c && (i+1)%clients != c {
					continue
				}
				for {
					id, err := client.RegisterSchema(ctx, j.subject, sr.Schema{Schema: j.text}, j.id, -1)
					if err == nil {
						got[c][i] = id
						answered.Add(1)
						break
					}
					var re *sr.ResponseError
					if errors.As(err, &re) && re.StatusCode < 500 || ctx.Err() != nil {
						t.Errorf("client %d, schema %d: %v", c, i, err)
						return
					}
					retries[c]++
					if !errors.Is(err, syscall.ECONNREFUSED) {
						cut[c]++
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}

	// Kill the registry after every killEvery answers, at a random moment
	// in the requests then in flight, while the clients run.
	const killEvery = 25
	clientsDone := make(chan struct{})
	go func() { wg.Wait(); close(clientsDone) }()
	rng := rand.New(rand.NewPCG(1, 2))
	kills := 0
	var restartErr error
	for done := false; !done && restartErr == nil; {
		select {
		case <-clientsDone:
			done = true
		case <-time.After(time.Duration(5+rng.IntN(20)) * time.Millisecond):
			if answered.Load() < int64(killEvery*(kills+1)) {
				continue
			}
			reg.kill()
			kills++
			restartErr = reg.start(ctx)
		}
	}
	if restartErr != nil {
		cancel() // the clients give up; wait for them before failing
	}
	<-clientsDone
	if restartErr != nil {
		t.Fatal(restartErr)
	}
	if t.Failed() {
		return
	}
	var totalRetries, totalCut int
	for c := range clients {
		totalRetries, totalCut = totalRetries+retries[c], totalCut+cut[c]
	}
	t.Logf("%d registrations of %d schemas by %d clients; the registry was killed %d times; %d requests retried, %d of them cut by a kill",
		2*len(jobs), len(jobs), clients, kills, totalRetries, totalCut)
	if kills < 2*len(jobs)/killEvery-1 || totalCut == 0 {
		t.Errorf("the registry was killed %d times, cutting %d requests: want one kill every %d answers, and some request cut",
			kills, totalCut, killEvery)
	}

	// A new registry after the last kill answers from the topic alone.
	reg.kill()
	if err := reg.start(ctx); err != nil {
		t.Fatal(err)
	}
	versions := map[string][]int{} // subject -> ids by version
	for i, j := range jobs {
		var ids []int
		for c := range clients {
			if got[c][i] != 0 {
				ids = append(ids, got[c][i])
			}
		}
		if len(ids) != 2 || ids[0] != ids[1] || (j.id != 0 && ids[0] != j.id) {
			t.Errorf("schema %d: the clients were told ids %v (asked for %d)", i, ids, j.id)
			continue
		}
		s, err := client.SchemaByID(ctx, ids[0])
		if err != nil || s.Schema != j.text {
			t.Errorf("schema %d: id %d serves %q, %v", i, ids[0], s.Schema, err)
		}
		versions[j.subject] = append(versions[j.subject], ids[0])
	}
	for subject, ids := range versions {
		vs, err := client.SubjectVersions(ctx, subject)
		if err != nil {
			t.Fatal(err)
		}
		if want := seq(len(ids)); !slices.Equal(vs, want) {
			t.Errorf("%s: versions %v, want 1..%d", subject, vs, len(ids))
			continue
		}
		var held []int
		for _, v := range vs {
			ss, err := client.SchemaByVersion(ctx, subject, v)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, ss.ID)
		}
		slices.Sort(held)
		slices.Sort(ids)
		if !slices.Equal(held, ids) {
			t.Errorf("%s: its versions hold ids %v, the clients were told %v", subject, held, ids)
		}
	}
	store, err := service.Open(ctx, broker.Bootstrap(), nil, stream.SchemasTopic, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	var subjects []string
	store.Read(func(st *registry.State) { subjects = st.Subjects() })
	if n := store.Skipped(); n != 0 || len(subjects) != 3 {
		t.Errorf("the topic read afresh: %d records skipped, subjects %v", n, subjects)
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

// registryProcess is `minibroker registry` run as a process on addr.
type registryProcess struct {
	bin, bootstrap, addr, log string
	cmd                       *exec.Cmd
}

// readyWait bounds a new registry's start: the process, its Kafka client,
// its first read of the topic.
const readyWait = time.Minute

// start starts the registry and waits until it answers.
func (p *registryProcess) start(ctx context.Context) error {
	log, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	p.cmd = exec.Command(p.bin, "registry", "--bootstrap", p.bootstrap, "--listen", p.addr)
	p.cmd.Stdout, p.cmd.Stderr = log, log
	if err := p.cmd.Start(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, readyWait)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+"/subjects", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			out, _ := os.ReadFile(p.log)
			return fmt.Errorf("registry on %s not answering after %s: %w\n%s", p.addr, readyWait, ctx.Err(), out)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// kill SIGKILLs the registry and reaps it.
func (p *registryProcess) kill() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
	p.cmd = nil
}

// freeLoopbackAddr is a loopback address with a port free at the call.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
