package pipeline_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/minibroker/terraform-provider-minibroker/internal/testbed/kafkabed"
	"github.com/minibroker/terraform-provider-minibroker/workloads/access"
	"github.com/minibroker/terraform-provider-minibroker/workloads/kclient"
	"github.com/minibroker/terraform-provider-minibroker/workloads/stream"
)

// TestPipelineOnSecuredKafka runs TestPipelineOnRealKafka's pipeline on
// brokers secured as the swarm's are (SASL_SSL with SCRAM-SHA-512, the
// StandardAuthorizer denying what no ACL allows), every component
// authenticating as its own user with exactly the grants of package
// access: the producer, MirrorMaker 2, each filter process and each
// consumer. Then it checks what an outsider meets: a filter's reader gets
// its stream and nothing else, a wrong password and a client without
// credentials get nothing, and a reader removed from the plan is locked
// out.
func TestPipelineOnSecuredKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Java and the Kafka jars (make kafka); run without -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	bed, plans := newSecuredBed(ctx, t)
	runPipeline(ctx, t, bed)

	// An outside reader of Filter001, as minibroker_filter_group gives one.
	reader := access.UserName(testOwner, "reader", "filter001")
	pw := password(t)
	readerGrants := access.ReaderGrants("Filter001", stream.SchemasTopic, reader)
	plans.mirror.Clusters[0].Users = append(plans.mirror.Clusters[0].Users, access.User{Name: reader, Password: pw, Grants: readerGrants})
	plans.apply(ctx, t, bed)
	settings := bed.mirror.ClientSettings(reader, pw)

	if n, err := consumeSome(ctx, bed.mirror.Bootstrap(), settings, "Filter001", reader+".laptop"); err != nil || n == 0 {
		t.Errorf("the reader read %d alerts of its own stream: %v", n, err)
	} else {
		t.Logf("the reader read %d alerts of Filter001", n)
	}
	if _, err := consumeSome(ctx, bed.mirror.Bootstrap(), settings, "Filter002", reader+".laptop"); !isCode(err, kafka.ErrTopicAuthorizationFailed) {
		t.Errorf("the reader of Filter001 reading Filter002: %v, want a topic authorization error", err)
	}
	if _, err := consumeSome(ctx, bed.mirror.Bootstrap(), settings, "Filter001", "someone-else"); !isCode(err, kafka.ErrGroupAuthorizationFailed) {
		t.Errorf("the reader in a group not named after it: %v, want a group authorization error", err)
	}
	wrong := bed.mirror.ClientSettings(reader, pw+"x")
	if _, err := consumeSome(ctx, bed.mirror.Bootstrap(), wrong, "Filter001", reader); !isCode(err, kafka.ErrAuthentication) {
		t.Errorf("a wrong password: %v, want an authentication error", err)
	}
	if _, err := consumeSome(ctx, bed.mirror.Bootstrap(), nil, "Filter001", reader); err == nil {
		t.Error("a client without credentials read the stream")
	} else {
		t.Logf("a client without credentials: %v", err)
	}
	// The producer registers through the registry and may not write the
	// schemas topic itself: a compromised producer cannot forge schemas.
	if err := produceOne(ctx, bed.hub.Bootstrap(), bed.settings(compProducer), stream.SchemasTopic, []byte("forged")); !isCode(err, kafka.ErrTopicAuthorizationFailed) {
		t.Errorf("the producer writing the schemas topic: %v, want a topic authorization error", err)
	}
	// Without credentials nothing else works either: create, produce, delete.
	if err := kclient.EnsureTopics(ctx, bed.hub.Bootstrap(), nil, kclient.Topic{Name: "intruder"}); err == nil {
		t.Error("a client without credentials created a topic on the hub")
	}

	// Removing the reader from the plan removes its user and ACLs.
	users := plans.mirror.Clusters[0].Users
	plans.mirror.Clusters[0].Users = users[:len(users)-1]
	changes := plans.apply(ctx, t, bed)
	if got := changes.mirror[0].UsersRemoved; len(got) != 1 || got[0] != reader {
		t.Errorf("users removed: %v, want [%s]", got, reader)
	}
	granted := 0
	for _, g := range readerGrants {
		granted += len(g.Operations)
	}
	if changes.mirror[0].ACLsRemoved != granted {
		t.Errorf("%d ACLs removed with the reader, want its %d", changes.mirror[0].ACLsRemoved, granted)
	}
	if _, err := consumeSome(ctx, bed.mirror.Bootstrap(), settings, "Filter001", reader); !isCode(err, kafka.ErrAuthentication) {
		t.Errorf("the removed reader: %v, want an authentication error", err)
	}
	// Applying the same plan again changes nothing.
	again := plans.apply(ctx, t, bed)
	if c := again.mirror[0]; c.ACLsCreated+c.ACLsRemoved+len(c.UsersRemoved) != 0 {
		t.Errorf("a second apply changed %+v", c)
	}
}

const testOwner = "test."

// securedPlans are the access plans of the secured bed, one per cluster.
type securedPlans struct{ hub, mirror access.Plan }

type securedChanges struct{ hub, mirror []kclient.AccessChanges }

func (p securedPlans) apply(ctx context.Context, t *testing.T, bed pipelineBed) securedChanges {
	t.Helper()
	var c securedChanges
	var err error
	if c.hub, err = kclient.ApplyAccess(ctx, p.hub, bed.hub.AdminSettings()); err != nil {
		t.Fatal(err)
	}
	if c.mirror, err = kclient.ApplyAccess(ctx, p.mirror, bed.mirror.AdminSettings()); err != nil {
		t.Fatal(err)
	}
	return c
}

func newSecuredBed(ctx context.Context, t *testing.T) (pipelineBed, securedPlans) {
	ca, err := kafkabed.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	admin := password(t)
	hub := kafkabed.StartBrokerT(t, kafkabed.WithSecurity(ca, true, admin))
	mirror := kafkabed.StartBrokerT(t, kafkabed.WithSecurity(ca, true, admin))
	for _, tp := range pipelineTopics {
		if err := kclient.EnsureTopics(ctx, hub.Bootstrap(), hub.AdminSettings(), tp); err != nil {
			t.Fatal(err)
		}
	}

	// One user per component, with the grants the swarm gives it.
	passwords := map[string]string{}
	user := func(component string, grants []access.Grant) access.User {
		if passwords[component] == "" {
			passwords[component] = password(t)
		}
		return access.User{Name: testOwner + component, Password: passwords[component], Grants: grants}
	}
	hubUsers := []access.User{
		user(compProducer, access.ProducerGrants(stream.AlertsTopic, stream.SchemasTopic, stream.TimingTopic)),
		user(compRegistry, access.RegistryGrants(stream.SchemasTopic)),
		user("mm2", access.MirrorMakerSourceGrants()),
	}
	mirrorUsers := []access.User{user("mm2", access.MirrorMakerTargetGrants())}
	for _, p := range []struct {
		name    string
		filters []testFilter
	}{{"Filter001", isolated[:1]}, {"Filter002", isolated[1:]}, {"shared", shared}} {
		writes := []string{stream.DeadLetterTopic(p.name), stream.FilterStateTopic(p.name)}
		for _, f := range p.filters {
			writes = append(writes, f.spec.Name)
		}
		group := stream.FilterGroup(p.name)
		hubUsers = append(hubUsers, user(compFilter(p.name), access.TimingWriterGrants(stream.TimingTopic)))
		mirrorUsers = append(mirrorUsers, user(compFilter(p.name), access.FilterGrants(stream.AlertsTopic, stream.SchemasTopic,
			writes, group, stream.FilterTransactionalID(group), stream.OffsetsTopic)))
	}
	for _, f := range append(append([]testFilter(nil), isolated...), shared...) {
		topic := f.spec.Name
		hubUsers = append(hubUsers, user(compConsumer(topic), access.TimingWriterGrants(stream.TimingTopic)))
		mirrorUsers = append(mirrorUsers, user(compConsumer(topic), access.ConsumerGrants(topic, stream.ConsumerGroup("consumer-"+topic))))
	}
	plans := securedPlans{
		hub:    access.Plan{Owner: testOwner, Clusters: []access.ClusterPlan{{Bootstrap: hub.Bootstrap(), Users: hubUsers}}},
		mirror: access.Plan{Owner: testOwner, Clusters: []access.ClusterPlan{{Bootstrap: mirror.Bootstrap(), Users: mirrorUsers}}},
	}
	bed := pipelineBed{hub: hub, mirror: mirror}
	first := plans.apply(ctx, t, bed)
	t.Logf("access: hub %+v, mirror %+v", first.hub[0], first.mirror[0])

	mm := kafkabed.StartMirrorMakerT(t, hub, mirror, kafkabed.WithMirrorTopics("alerts|minibroker-schemas"),
		kafkabed.WithMirrorAuth(hub.ClientAuth(testOwner+"mm2", passwords["mm2"]), mirror.ClientAuth(testOwner+"mm2", passwords["mm2"])))
	if err := mm.WaitTopic(ctx, stream.AlertsTopic); err != nil {
		t.Fatal(err)
	}
	bed.settings = func(component string) map[string]string {
		if component == compTest {
			return hub.AdminSettings() // the operator: hub and mirror share the admin
		}
		pw, ok := passwords[component]
		if !ok {
			t.Fatalf("no user for component %q", component)
		}
		return hub.ClientSettings(testOwner+component, pw)
	}
	return bed, plans
}

func password(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// consumeSome reads topic from the beginning in group until it has read
// something and then nothing for a second, returning how many alerts it
// read, or the first error the client reports.
func consumeSome(ctx context.Context, bootstrap string, settings map[string]string, topic, group string) (int, error) {
	cm := kclient.ConsumerConfig(bootstrap, group, true, settings)
	c, err := kafka.NewConsumer(cm)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.Subscribe(topic, nil); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n, idle := 0, 0
	for ctx.Err() == nil {
		switch e := c.Poll(100).(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				return n, e.TopicPartition.Error
			}
			n, idle = n+1, 0
		case kafka.Error:
			return n, e
		case nil:
			if idle++; n > 0 && idle > 10 {
				return n, nil
			}
		}
	}
	return n, errors.New("nothing read and no error in 30 s")
}

// produceOne writes value to topic and returns what its delivery report
// says.
func produceOne(ctx context.Context, bootstrap string, conn map[string]string, topic string, value []byte) error {
	p, err := kafka.NewProducer(kclient.ProducerConfig(bootstrap, conn))
	if err != nil {
		return err
	}
	defer p.Close()
	report := make(chan kafka.Event, 1)
	if err := p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny}, Key: value, Value: value}, report); err != nil {
		return err
	}
	select {
	case ev := <-report:
		return ev.(*kafka.Message).TopicPartition.Error
	case <-ctx.Done():
		return ctx.Err()
	}
}

// isCode reports whether err is a Kafka error with code, or one whose
// text carries the code's description (librdkafka reports some broker
// errors inside a generic one).
func isCode(err error, code kafka.ErrorCode) bool {
	var ke kafka.Error
	if errors.As(err, &ke) && ke.Code() == code {
		return true
	}
	return err != nil && strings.Contains(err.Error(), code.String())
}
