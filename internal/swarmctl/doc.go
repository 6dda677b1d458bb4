// Package swarmctl is everything that talks to Docker for a mini-broker
// swarm: it reaches each node's Docker Engine over SSH, forms the swarm
// (init or adopt, join, labels, image archives), keeps the overlay network,
// reconciles the services and configs one owner wants, waits until their
// tasks run (with the failing task's logs when they do not), reads back
// what runs, and takes it all down again.
//
// It takes and returns internal/swarmspec types and knows nothing of
// Terraform: the provider's resources translate between their attributes
// and these calls, and the benchmarks call the same code on a manager's
// unix socket.
//
// Files: client.go (SSH connections, managers), form.go (forming and
// updating the swarm), nodes.go (node operations), network.go, images.go
// (image archives), services.go (reconciling services and configs),
// tasks.go (waiting for tasks, failures and logs), volumes.go (the
// brokers' volumes, removed on their node), destroy.go, ready.go (waiting
// for a new machine's engine).
package swarmctl

import "time"

// Log messages that tools look for: the benchmarks time an apply's phases
// by them in the provider's log.
const (
	LogInitSwarm     = "initialising swarm"
	LogCreateService = "creating service"
)

const (
	// maxParallel bounds concurrent Docker API calls to one manager, and
	// the nodes worked on at once.
	maxParallel = 8
	// pollInterval is how often waits poll the Docker API.
	pollInterval = time.Second
	// settleTime is how long a task must have been running to count, as
	// Swarm's own update monitor (5 s by default); it is also the pause
	// after draining a node.
	settleTime = 5 * time.Second
	// failedTasksLimit is how many failed tasks of one service end a wait:
	// Swarm would go on restarting, but the user needs the reason now.
	failedTasksLimit = 3
	// unschedulableTime is how long a task may wait for a node with room
	// for its reservations before a wait reports it: a rolling update
	// frees a node's resources within seconds.
	unschedulableTime = 30 * time.Second
	// removeAttempts is how many times a service removal that the manager
	// refuses is tried before the error is returned.
	removeAttempts = 5
	// logTail is how many log lines of a failing task an error shows.
	logTail = 20
	// gwbridgeTimeout bounds the clean-up of Swarm's networks on a node
	// that leaves.
	gwbridgeTimeout = 3 * time.Minute
)
