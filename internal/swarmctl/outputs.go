package swarmctl

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// Topics the filter groups on one mirror write: a group may not write a
// topic another group there writes, output, dead-letter or state topic
// (swarmspec.TopicClashes).
//
// Two groups of one configuration are created (or updated) at the same
// time by Terraform, and each would find on the swarm none of the
// other's services yet. So a group about to be placed first claims its
// topics on its mirror in the Client (one per provider process, which
// serves the whole apply), under a lock, seeing the claims of the groups
// being placed at that moment, and holds the claim until its services
// exist (or its apply failed): of two clashing groups, the second to
// claim is refused, naming the first, and the first goes on. Groups that
// do not clash are never held up. The claim holds the group's service
// names too (swarmspec.GroupServices), on the whole swarm: of two groups
// asking for one name, the second is refused (NameClashError). Two applies of different Terraform
// states on one mirror at the same moment are not covered.

// TopicClashError refuses a filter group that would write topics other
// groups on its mirror write.
type TopicClashError struct {
	Clashes []swarmspec.TopicClash
}

func (e *TopicClashError) Error() string {
	msgs := make([]string, len(e.Clashes))
	for i, c := range e.Clashes {
		msgs[i] = c.Error()
	}
	return strings.Join(msgs, "\n")
}

// topicClaims are the topics of the groups being placed now, by swarm
// and mirror, then group; and their service names, by swarm, then group.
type topicClaims struct {
	mu     sync.Mutex
	claims map[string]map[string][]swarmspec.GroupTopic
	names  map[string]map[string][]string
}

func newTopicClaims() *topicClaims {
	return &topicClaims{claims: map[string]map[string][]swarmspec.GroupTopic{}, names: map[string]map[string][]string{}}
}

// nameClash refuses the group's service names that another group being
// placed on the swarm claims. The caller holds mu.
func (c *topicClaims) nameClash(swarmID, group string, names []string) error {
	var clashes []NameClash
	for _, n := range names {
		for other, theirs := range c.names[swarmID] {
			if other != group && slices.Contains(theirs, n) {
				clashes = append(clashes, NameClash{Service: n, HeldBy: swarmspec.FilterGroupOwner(other)})
			}
		}
	}
	if len(clashes) > 0 {
		return &NameClashError{Owner: swarmspec.FilterGroupOwner(group), Clashes: clashes}
	}
	return nil
}

// inFlight returns the topics claimed on the mirror (key) by groups
// other than group. The caller holds mu.
func (c *topicClaims) inFlight(key, group string) []swarmspec.GroupTopic {
	var out []swarmspec.GroupTopic
	for g, ts := range c.claims[key] {
		if g != group {
			out = append(out, ts...)
		}
	}
	sortTopics(out)
	return out
}

func sortTopics(out []swarmspec.GroupTopic) {
	slices.SortFunc(out, func(a, b swarmspec.GroupTopic) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Filter, b.Filter), cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Topic, b.Topic))
	})
}

// MirrorTopics returns the topics that the filter groups on the mirror
// other than group write, as their services run: outputs, and the
// dead-letter and state topics of their filter processes.
func (s *Swarm) MirrorTopics(ctx context.Context, mirror, group string) ([]swarmspec.GroupTopic, error) {
	list, err := s.cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(
		filters.Arg("label", swarmspec.LabelManaged+"=true"), filters.Arg("label", swarmspec.LabelMirror+"="+mirror))})
	if err != nil {
		return nil, fmt.Errorf("list the filter groups on mirror %s: %w", mirror, err)
	}
	var out []swarmspec.GroupTopic
	for _, svc := range list {
		owner, ok := swarmspec.GroupOfOwner(svc.Spec.Labels[swarmspec.LabelOwner])
		if !ok || owner == group || !swarmspec.IsFilterProcess(svc.Spec) {
			continue
		}
		if ts, ok := swarmspec.IsolatedTopics(svc.Spec); ok {
			out = append(out, ts...)
			continue
		}
		if name, ok := swarmspec.ProcessName(svc.Spec); ok {
			out = append(out, swarmspec.ProcessTopics(owner, "", name)...)
		}
		id, name, ok := swarmspec.SharedFiltersConfig(svc.Spec)
		if !ok {
			continue
		}
		outs, err := s.sharedOutputs(ctx, owner, id, name)
		if err != nil {
			return nil, err
		}
		out = append(out, outs...)
	}
	sortTopics(out)
	return out, nil
}

// sharedOutputs reads a shared group's outputs from its filters file,
// the config id (name).
func (s *Swarm) sharedOutputs(ctx context.Context, group, id, name string) ([]swarmspec.GroupTopic, error) {
	c, _, err := s.cli.ConfigInspectWithRaw(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("filter group %s: read its filters file %s: %w", group, name, err)
	}
	return swarmspec.SharedOutputs(group, c.Spec.Data)
}

// CheckTopics refuses, with a *TopicClashError, a group (Name, Mode,
// Mirror and Filters are read) that would write a topic that another
// group on the mirror writes, or claims (being placed at this moment by
// this provider process). It changes nothing.
func (s *Swarm) CheckTopics(ctx context.Context, g swarmspec.FilterGroup) error {
	var claimed []swarmspec.GroupTopic
	if s.claims != nil {
		s.claims.mu.Lock()
		claimed = s.claims.inFlight(s.mirrorKey(g.Mirror), g.Name)
		s.claims.mu.Unlock()
	}
	return s.checkTopics(ctx, g, claimed)
}

func (s *Swarm) checkTopics(ctx context.Context, g swarmspec.FilterGroup, claimed []swarmspec.GroupTopic) error {
	if clashes := swarmspec.TopicClashes(g, claimed); len(clashes) > 0 {
		return &TopicClashError{Clashes: clashes}
	}
	running, err := s.MirrorTopics(ctx, g.Mirror, g.Name)
	if err != nil {
		return err
	}
	if clashes := swarmspec.TopicClashes(g, running); len(clashes) > 0 {
		return &TopicClashError{Clashes: clashes}
	}
	return nil
}

// ClaimTopics is CheckTopics for a group about to be placed: it also
// claims the group's topics on the mirror, and its service names on the
// swarm, until release is called, once its services exist or its apply
// failed. release is never nil.
func (s *Swarm) ClaimTopics(ctx context.Context, g swarmspec.FilterGroup) (release func(), err error) {
	if s.claims == nil {
		return func() {}, s.CheckTopics(ctx, g)
	}
	key, c := s.mirrorKey(g.Mirror), s.claims
	var names []string
	for _, svc := range swarmspec.GroupServices(g) {
		names = append(names, svc.Name)
	}
	c.mu.Lock()
	claimed := c.inFlight(key, g.Name)
	if clashes := swarmspec.TopicClashes(g, claimed); len(clashes) > 0 {
		c.mu.Unlock()
		return func() {}, &TopicClashError{Clashes: clashes}
	}
	if err := c.nameClash(s.ID, g.Name, names); err != nil {
		c.mu.Unlock()
		return func() {}, err
	}
	if c.claims[key] == nil {
		c.claims[key] = map[string][]swarmspec.GroupTopic{}
	}
	if c.names[s.ID] == nil {
		c.names[s.ID] = map[string][]string{}
	}
	mine := swarmspec.GroupTopics(g)
	c.claims[key][g.Name] = mine
	c.names[s.ID][g.Name] = names
	c.mu.Unlock()
	var once sync.Once
	release = func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			// A later claim of the same group replaces this one; leave it.
			if ts, ok := c.claims[key][g.Name]; ok && slices.Equal(ts, mine) {
				delete(c.claims[key], g.Name)
				if len(c.claims[key]) == 0 {
					delete(c.claims, key)
				}
				delete(c.names[s.ID], g.Name)
				if len(c.names[s.ID]) == 0 {
					delete(c.names, s.ID)
				}
			}
		})
	}
	// Claimed: what runs on the swarm now includes every group that
	// claimed before us and has since finished.
	if err := s.checkTopics(ctx, g, nil); err != nil {
		release()
		return func() {}, err
	}
	return release, nil
}

// mirrorKey names a mirror among those of every swarm.
func (s *Swarm) mirrorKey(mirror string) string { return s.ID + "/" + mirror }
