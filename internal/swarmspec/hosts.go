package swarmspec

import (
	"fmt"
	"net"
)

// Host is one machine of the swarm: where its Docker Engine is reached and
// the part it plays.
type Host struct {
	Address   string // SSH address, "host" or "host:port"
	Role      string // one of Roles
	Index     int    // number among the hosts of its role, from 0 (the LabelIndex label)
	Socket    string // the Docker Engine's unix socket on the host
	Advertise string // address other nodes reach it at for Swarm traffic (no port)
}

// NumberHosts checks a list of hosts (exactly one manager, at most one
// producer, no address twice), numbers the hosts of each role in list
// order and defaults each advertise address to the host part of its SSH
// address.
func NumberHosts(in []Host) ([]Host, error) {
	count := map[string]int{}
	seen := map[string]bool{}
	out := make([]Host, 0, len(in))
	for i, h := range in {
		if seen[h.Address] {
			return nil, fmt.Errorf("hosts[%d]: address %q is listed twice", i, h.Address)
		}
		seen[h.Address] = true
		if h.Advertise == "" {
			h.Advertise = HostPart(h.Address)
		}
		h.Index = count[h.Role]
		count[h.Role]++
		out = append(out, h)
	}
	switch {
	case count[RoleManager] != 1:
		return nil, fmt.Errorf("hosts: need exactly one host with role %q, found %d", RoleManager, count[RoleManager])
	case count[RoleProducer] > 1:
		return nil, fmt.Errorf("hosts: at most one host may have role %q, found %d", RoleProducer, count[RoleProducer])
	}
	return out, nil
}

// ManagerOf returns the manager among hosts (the zero Host if none).
func ManagerOf(hosts []Host) Host {
	for _, h := range hosts {
		if h.Role == RoleManager {
			return h
		}
	}
	return Host{}
}

// HostPart is an address without its port.
func HostPart(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// ImagesOfRole lists the images the services on a node of role run: the
// Kafka image for the hub (manager) and the mirrors (filter nodes), the
// workloads image for the producer, filters, consumers, and on the manager
// the access jobs and the schema registry.
func ImagesOfRole(role, kafka, workloads string) []string {
	switch role {
	case RoleManager, RoleFilter:
		// The manager runs the hub, the access jobs (minibroker admin) and
		// the schema registry (minibroker registry).
		return []string{kafka, workloads}
	default:
		return []string{workloads}
	}
}
