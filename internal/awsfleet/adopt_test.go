package awsfleet_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/minibroker/terraform-provider-minibroker/internal/awsfleet"
)

const otherPublicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB9fUqXlYH1l3cXSAJcQkYzW5d3rW1wqv7FqM8YwH0Yv other"

func TestIdentityComesFromSubnetAndName(t *testing.T) {
	id := awsfleet.Identity("subnet-0abc", "minibroker")
	if !regexp.MustCompile(`^mb-[0-9a-f]{12}$`).MatchString(id) {
		t.Fatalf("Identity = %q, want mb- and 12 hex digits", id)
	}
	if again := awsfleet.Identity("subnet-0abc", "minibroker"); again != id {
		t.Errorf("Identity is not deterministic: %s, then %s", id, again)
	}
	for _, other := range []string{awsfleet.Identity("subnet-0abd", "minibroker"), awsfleet.Identity("subnet-0abc", "minibroker2"),
		awsfleet.Identity("subnet-0ab", "cminibroker")} {
		if other == id {
			t.Errorf("another subnet or name gives the same id %s", id)
		}
	}
}

// fleetWant is a fresh fleet of the slots in b's subnet, with name t.
func (b *bed) fleetWant(slots ...awsfleet.Slot) awsfleet.Want {
	return awsfleet.Want{
		Spec: awsfleet.Spec{SwarmID: awsfleet.Identity(b.subnet, "t"), NamePrefix: "t", InstanceType: "t3.micro",
			SubnetID: b.subnet, RootVolumeSize: 8, RootVolumeType: "gp3"},
		AMIParameter: "/minibroker-test/ubuntu/ami-id",
		PublicKey:    testPublicKey,
		AdminCIDRs:   []string{"203.0.113.0/24"},
		Slots:        slots,
		Fresh:        true,
	}
}

// tagged lists every instance moto holds with the fleet's tag, terminated
// ones too, as "id state".
func (b *bed) tagged(t *testing.T, swarmID string) []string {
	t.Helper()
	out, err := b.ec2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + awsfleet.TagSwarm), Values: []string{swarmID}}}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			got = append(got, aws.ToString(in.InstanceId)+" "+string(in.State.Name))
		}
	}
	slices.Sort(got)
	return got
}

// A create finds what an interrupted create of the same configuration
// left and adopts it (but not an instance it would not start); once a
// create finished, another one with the same identity is refused and
// touches nothing; after a destroy, the identity starts afresh.
func TestFreshProvisionAdoptsLeftoversAndRefusesACreatedFleet(t *testing.T) {
	b := newBed(t)
	ctx := context.Background()
	manager, filter, consumer := awsfleet.Slot{Role: "manager"}, awsfleet.Slot{Role: "filter"}, awsfleet.Slot{Role: "consumer"}

	// The killed apply: two of the three instances started.
	killed, err := b.fleet.Provision(ctx, b.fleetWant(manager, filter))
	if err != nil {
		t.Fatal(err)
	}
	// And one of another instance type (the configuration changed before
	// the next apply).
	w := b.fleetWant(manager, filter, consumer)
	odd := w.Spec
	odd.InstanceType, odd.AMI, odd.SecurityGroup, odd.KeyName = "t3.small", killed.AMI, killed.SecurityGroup, killed.KeyName
	oddIn, err := b.fleet.RunInstance(ctx, odd, "consumer", 0, 0)
	if err != nil {
		t.Fatal(err)
	}

	next, err := b.fleet.Provision(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if next.SecurityGroup != killed.SecurityGroup || next.KeyName != killed.KeyName {
		t.Errorf("group %s key %s, want the interrupted create's %s and %s", next.SecurityGroup, next.KeyName, killed.SecurityGroup, killed.KeyName)
	}
	if !slices.Equal(next.Adopted, awsfleet.IDs(killed.Instances)) {
		t.Errorf("adopted %v, want %v", next.Adopted, awsfleet.IDs(killed.Instances))
	}
	if !slices.Equal(next.Surplus, []string{oddIn.ID}) {
		t.Errorf("surplus %v, want the t3.small %s", next.Surplus, oddIn.ID)
	}
	if len(next.Instances) != 3 || next.Instances[2].Role != "consumer" || next.Instances[2].ID == oddIn.ID {
		t.Errorf("instances %+v", next.Instances)
	}
	if got := b.tagged(t, w.SwarmID); len(got) != 4 {
		t.Errorf("moto holds %v; want the 3 instances and the t3.small", got)
	}
	if err := b.fleet.Terminate(ctx, next.Surplus); err != nil {
		t.Fatal(err)
	}

	// Created: another create of that identity is refused, with what it
	// found, and changes nothing (not even the group's rules).
	if err := b.fleet.MarkCreated(ctx, w.SwarmID); err != nil {
		t.Fatal(err)
	}
	before := rules(t, b, next.SecurityGroup)
	other := w
	other.AdminCIDRs = []string{"192.0.2.0/24"}
	other.Slots = append(other.Slots, awsfleet.Slot{Role: "consumer", Index: 1})
	refused, err := b.fleet.Provision(ctx, other)
	var taken *awsfleet.TakenError
	if !errors.As(err, &taken) {
		t.Fatalf("create of a created fleet: %v, want a TakenError", err)
	}
	if refused.Touched || taken.SecurityGroup != next.SecurityGroup || !slices.Equal(taken.Instances, awsfleet.IDs(next.Instances)) {
		t.Errorf("refused %+v, error %+v", refused, taken)
	}
	for _, want := range []string{w.SwarmID, next.SecurityGroup, b.subnet, `name prefix ("t")`, "terraform import", "another aws.name_prefix"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
	if after := rules(t, b, next.SecurityGroup); !slices.Equal(after, before) {
		t.Errorf("a refused create changed the group's rules: %v, then %v", before, after)
	}
	if got := b.tagged(t, w.SwarmID); len(got) != 4 {
		t.Errorf("a refused create changed the instances: %v", got)
	}
	// The fleet's own updates go on.
	update := w
	update.Fresh = false
	if _, err := b.fleet.Provision(ctx, update); err != nil {
		t.Errorf("update of the created fleet: %v", err)
	}

	// Destroyed: the next create starts afresh, adopting no terminated
	// instance.
	if err := b.fleet.Sweep(ctx, w.SwarmID, nil); err != nil {
		t.Fatal(err)
	}
	again, err := b.fleet.Provision(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Adopted) != 0 || len(again.Surplus) != 0 || again.SecurityGroup == next.SecurityGroup || len(again.Instances) != 3 {
		t.Errorf("after a destroy: %+v", again)
	}
	for _, in := range again.Instances {
		if slices.Contains(awsfleet.IDs(next.Instances), in.ID) {
			t.Errorf("a terminated instance %s came back", in.ID)
		}
	}
	if err := b.fleet.Sweep(ctx, w.SwarmID, nil); err != nil {
		t.Fatal(err)
	}
}

// A group or key pair with the fleet's name that is not the fleet's is
// refused, and left alone; a key pair of the fleet's with another public
// key is imported again, and instances started with it are not adopted.
func TestFreshProvisionNameCollisionsAndChangedKey(t *testing.T) {
	b := newBed(t)
	ctx := context.Background()
	w := b.fleetWant(awsfleet.Slot{Role: "manager"})
	name := "t-" + w.SwarmID

	g, err := b.ec2.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(name),
		Description: aws.String("someone else's"), VpcId: aws.String(b.vpc)})
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.fleet.Provision(ctx, w)
	if err == nil || !strings.Contains(err.Error(), "is not swarm "+w.SwarmID+"'s") || p.Touched {
		t.Errorf("with a foreign group of the fleet's name: %+v, %v", p, err)
	}
	if _, err := b.ec2.DeleteSecurityGroup(ctx, &ec2.DeleteSecurityGroupInput{GroupId: g.GroupId}); err != nil {
		t.Fatal(err)
	}

	if _, err := b.ec2.ImportKeyPair(ctx, &ec2.ImportKeyPairInput{KeyName: aws.String(name), PublicKeyMaterial: []byte(otherPublicKey)}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.fleet.Provision(ctx, w); err == nil || !strings.Contains(err.Error(), "key pair "+name+" exists and is not swarm") {
		t.Errorf("with a foreign key pair of the fleet's name: %v", err)
	}
	if err := b.fleet.Sweep(ctx, w.SwarmID, nil); err != nil {
		t.Fatal(err)
	}
	if keys, err := b.ec2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{}); err != nil || len(keys.KeyPairs) != 1 {
		t.Errorf("after the sweep, key pairs %v, %v; want the foreign one only", keys, err)
	}
	if _, err := b.ec2.DeleteKeyPair(ctx, &ec2.DeleteKeyPairInput{KeyName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}

	killed, err := b.fleet.Provision(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	w.PublicKey = otherPublicKey
	next, err := b.fleet.Provision(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if len(next.Adopted) != 0 || !slices.Equal(next.Surplus, awsfleet.IDs(killed.Instances)) {
		t.Errorf("after the key changed: adopted %v, surplus %v; want the old manager %v surplus", next.Adopted, next.Surplus, awsfleet.IDs(killed.Instances))
	}
	keys, err := b.ec2.DescribeKeyPairs(ctx, &ec2.DescribeKeyPairsInput{KeyNames: []string{name}, IncludePublicKey: aws.Bool(true)})
	if err != nil || len(keys.KeyPairs) != 1 || !strings.HasPrefix(aws.ToString(keys.KeyPairs[0].PublicKey), strings.Join(strings.Fields(otherPublicKey)[:2], " ")) {
		t.Errorf("key pair after the change: %+v, %v", keys, err)
	}
	if err := b.fleet.Sweep(ctx, w.SwarmID, nil); err != nil {
		t.Fatal(err)
	}
}

// idempotentEC2 stands in front of moto (which ignores ClientToken) and
// answers a RunInstances call whose client token it has seen with the
// first answer, as EC2 does; it counts the calls that reached moto.
type idempotentEC2 struct {
	moto   *url.URL
	mu     sync.Mutex
	seen   map[string][]byte
	runs   int
	tokens []string // of every RunInstances call, in order
}

func (p *idempotentEC2) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	token := ""
	if form.Get("Action") == "RunInstances" {
		token = form.Get("ClientToken")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if token != "" {
		p.tokens = append(p.tokens, token)
	}
	if answer, ok := p.seen[token]; ok && token != "" {
		w.Header().Set("Content-Type", "text/xml")
		w.Write(answer)
		return
	}
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, p.moto.JoinPath(r.URL.Path).String(), bytes.NewReader(body))
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if token != "" && resp.StatusCode == http.StatusOK {
		p.seen[token] = answer
		p.runs++
	}
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(answer)
}

// The client tokens make a repeated launch return the same instance, a
// slot whose instance ended get a new one, and a fleet created again after
// a destroy new ones.
func TestClientTokensFollowTheSlot(t *testing.T) {
	b := newBed(t)
	ctx := context.Background()
	moto, err := url.Parse(b.motoURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &idempotentEC2{moto: moto, seen: map[string][]byte{}}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	cfg := b.cfg.Copy()
	cfg.BaseEndpoint = aws.String(srv.URL)
	fleet := awsfleet.New(cfg, awsfleet.WithPollInterval(b.poll))

	w := b.fleetWant(awsfleet.Slot{Role: "manager"}, awsfleet.Slot{Role: "consumer"})
	first, err := fleet.Provision(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if proxy.runs != 2 {
		t.Fatalf("%d instances started, want 2", proxy.runs)
	}
	consumer := first.Instances[1]

	// The next apply after a killed one that EC2 does not list the
	// instance to yet: the same token, the same instance.
	spec := w.Spec
	spec.SecurityGroup, spec.AMI, spec.KeyName = first.SecurityGroup, first.AMI, first.KeyName
	again, err := fleet.RunInstance(ctx, spec, "consumer", 0, 0)
	if err != nil || again.ID != consumer.ID || proxy.runs != 2 {
		t.Errorf("repeated launch: %s, %v (%d started); want %s", again.ID, err, proxy.runs, consumer.ID)
	}

	// The consumer terminated outside: its slot's first token names a
	// terminated instance, the next one starts a new instance.
	if err := fleet.Terminate(ctx, []string{consumer.ID}); err != nil {
		t.Fatal(err)
	}
	w.Fresh = false
	replaced, err := fleet.Provision(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if len(replaced.Instances) != 2 || replaced.Instances[1].ID == consumer.ID || !replaced.Instances[1].Alive() || proxy.runs != 3 {
		t.Errorf("after the consumer ended: %+v, %d started", replaced.Instances, proxy.runs)
	}
	if n := len(proxy.tokens); n < 2 || !strings.HasSuffix(proxy.tokens[n-2], "-consumer-0-0") || !strings.HasSuffix(proxy.tokens[n-1], "-consumer-0-1") {
		t.Errorf("tokens %v; want the slot's first, then its second", proxy.tokens)
	}

	// Destroyed and created again: a new security group, new tokens, new
	// instances.
	if err := fleet.Sweep(ctx, w.SwarmID, nil); err != nil {
		t.Fatal(err)
	}
	w.Fresh = true
	anew, err := fleet.Provision(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if proxy.runs != 5 || len(anew.Instances) != 2 || !anew.Instances[0].Alive() || !anew.Instances[1].Alive() {
		t.Errorf("created again: %+v, %d started in all, want 5", anew.Instances, proxy.runs)
	}
	if err := fleet.Sweep(ctx, w.SwarmID, nil); err != nil {
		t.Fatal(err)
	}
}
