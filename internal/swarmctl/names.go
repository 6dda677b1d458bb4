package swarmctl

import (
	"context"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/swarm"

	"github.com/minibroker/terraform-provider-minibroker/internal/swarmspec"
)

// Service names are the swarm's, one namespace for every owner. Names
// join a component's name and its parts' with dashes, which the names
// may hold (swarmspec.GroupServices), so two owners can ask for one name.
// Apply refuses, before it changes anything, an owner whose services
// would take a name a service of another owner (or one the provider did
// not place) holds; Docker would refuse only the second service's
// creation, with the owner half applied.

// NameClash is a service name an owner wants that another service holds.
type NameClash struct {
	Service string // the name
	HeldBy  string // the holder's owner label; "" when not the provider's
}

// Holder says who holds the name, for a user.
func (c NameClash) Holder() string { return OwnerText(c.HeldBy) }

// NameClashError refuses an owner whose services would take names other
// services hold.
type NameClashError struct {
	Owner   string
	Clashes []NameClash
}

func (e *NameClashError) Error() string {
	msgs := make([]string, len(e.Clashes))
	for i, c := range e.Clashes {
		msgs[i] = fmt.Sprintf("service name %q is already taken by %s", c.Service, c.Holder())
	}
	return fmt.Sprintf("%s: %s. Service names join the names of a mirror or filter group and of its filters with "+
		"dashes; rename one of them", OwnerText(e.Owner), strings.Join(msgs, "; "))
}

// OwnerText names an owner label's owner for a user.
func OwnerText(owner string) string {
	if g, ok := swarmspec.GroupOfOwner(owner); ok {
		return fmt.Sprintf("filter group %q", g)
	}
	if m, ok := strings.CutPrefix(owner, swarmspec.MirrorOwner("")); ok {
		return fmt.Sprintf("mirror %q", m)
	}
	switch owner {
	case swarmspec.OwnerSwarm:
		return "the swarm's own services"
	case "":
		return "a service this provider did not place"
	}
	return owner
}

// CheckNames refuses, with a *NameClashError, names that services not of
// owner hold. It changes nothing.
func (m *Manager) CheckNames(ctx context.Context, owner string, names []string) error {
	list, err := m.cli.ServiceList(ctx, swarm.ServiceListOptions{})
	if err != nil {
		return fmt.Errorf("list the swarm's services: %w", err)
	}
	holder := make(map[string]string, len(list))
	for _, s := range list {
		holder[s.Spec.Name] = s.Spec.Labels[swarmspec.LabelOwner]
		if s.Spec.Labels[swarmspec.LabelManaged] != "true" {
			holder[s.Spec.Name] = ""
		}
	}
	var clashes []NameClash
	for _, n := range names {
		if h, taken := holder[n]; taken && h != owner {
			clashes = append(clashes, NameClash{Service: n, HeldBy: h})
		}
	}
	if len(clashes) > 0 {
		return &NameClashError{Owner: owner, Clashes: clashes}
	}
	return nil
}
