// Package access declares the users and ACLs one owner (the swarm, a
// mirror, a filter group) wants on the Kafka clusters it uses: the file
// `minibroker admin --plan` reads, which the provider renders
// (internal/swarmspec) and delivers as a Swarm secret. It has no
// dependencies, so both sides share it.
package access

import (
	"fmt"
	"sort"
	"strings"
)

// Resource types of a Grant, as Kafka names them.
const (
	Topic           = "topic"
	Group           = "group"
	TransactionalID = "transactional-id"
	Cluster         = "cluster"
)

// Patterns of a Grant's resource name.
const (
	Literal  = "literal"
	Prefixed = "prefixed"
)

// Operations, as Kafka names them.
const (
	Read            = "read"
	Write           = "write"
	Create          = "create"
	Describe        = "describe"
	DescribeConfigs = "describe-configs"
	AlterConfigs    = "alter-configs"
	ClusterAction   = "cluster-action"
	Alter           = "alter"
	All             = "all"
)

// ClusterName is the resource name of the cluster itself.
const ClusterName = "kafka-cluster"

// Plan is everything one owner wants on the clusters it uses. Applying it
// is idempotent: users are created or their password set, grants are
// added, and any user whose name starts with Owner that the plan does not
// list on a cluster is removed there with all its ACLs, as are ACLs of a
// listed user that the plan does not grant.
type Plan struct {
	// Owner is the prefix of every user name this plan owns, ending with
	// UserSeparator so that no other owner's names start with it.
	Owner    string        `json:"owner"`
	Clusters []ClusterPlan `json:"clusters"`
}

// ClusterPlan is the users one owner wants on one cluster.
type ClusterPlan struct {
	Bootstrap string `json:"bootstrap"`
	Users     []User `json:"users"`
}

// User is one SCRAM user and what it may do.
type User struct {
	Name     string  `json:"name"`
	Password string  `json:"password"`
	Grants   []Grant `json:"grants"`
}

// Grant allows one principal Operations on a resource.
type Grant struct {
	Resource   string   `json:"resource"`
	Name       string   `json:"name"`
	Pattern    string   `json:"pattern,omitempty"` // default Literal
	Operations []string `json:"operations"`
}

// UserSeparator ends every owner prefix and separates the parts of a
// user name: resource names use lower-case letters, digits and dashes,
// so one owner's prefix is never the start of another's.
const UserSeparator = "."

// UserName joins an owner prefix and the parts of a user's name.
func UserName(owner string, parts ...string) string {
	return owner + strings.Join(parts, UserSeparator)
}

// Check refuses a plan that could remove another owner's users or that
// Kafka would refuse.
func (p Plan) Check() error {
	if p.Owner == "" || !strings.HasSuffix(p.Owner, UserSeparator) {
		return fmt.Errorf("access plan: owner %q must end with %q", p.Owner, UserSeparator)
	}
	for _, c := range p.Clusters {
		if c.Bootstrap == "" {
			return fmt.Errorf("access plan %s: a cluster without bootstrap servers", p.Owner)
		}
		seen := map[string]bool{}
		for _, u := range c.Users {
			if !strings.HasPrefix(u.Name, p.Owner) {
				return fmt.Errorf("access plan %s: user %q does not start with the owner's prefix", p.Owner, u.Name)
			}
			if seen[u.Name] {
				return fmt.Errorf("access plan %s: user %q twice on %s", p.Owner, u.Name, c.Bootstrap)
			}
			seen[u.Name] = true
			if len(u.Password) < 16 {
				return fmt.Errorf("access plan %s: user %q needs a password of at least 16 characters", p.Owner, u.Name)
			}
			for _, g := range u.Grants {
				if err := g.check(); err != nil {
					return fmt.Errorf("access plan %s: user %q: %w", p.Owner, u.Name, err)
				}
			}
		}
	}
	return nil
}

func (g Grant) check() error {
	switch g.Resource {
	case Topic, Group, TransactionalID, Cluster:
	default:
		return fmt.Errorf("grant on %q: unknown resource type", g.Resource)
	}
	switch g.Pattern {
	case "", Literal, Prefixed:
	default:
		return fmt.Errorf("grant on %s %q: unknown pattern %q", g.Resource, g.Name, g.Pattern)
	}
	if g.Name == "" || len(g.Operations) == 0 {
		return fmt.Errorf("grant on %s: a name and operations are required", g.Resource)
	}
	return nil
}

// Ops is the usual operation list of a grant, sorted for stable output.
func Ops(ops ...string) []string {
	out := append([]string(nil), ops...)
	sort.Strings(out)
	return out
}
