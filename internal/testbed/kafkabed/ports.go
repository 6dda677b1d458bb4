package kafkabed

import (
	"crypto/rand"
	"fmt"
	"net"

	"github.com/minibroker/terraform-provider-minibroker/internal/kafkaconf"
)

// freeLoopbackPorts returns n distinct TCP ports that were free on 127.0.0.1
// a moment ago. Another process may still take one before java binds it;
// StartBroker retries on "Address already in use".
func freeLoopbackPorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("kafkabed: find a free loopback port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// newClusterID returns a random Kafka cluster id (see kafkaconf.ClusterID).
func newClusterID() (string, error) {
	for {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("kafkabed: cluster id: %w", err)
		}
		if id, ok := kafkaconf.ClusterID(b); ok {
			return id, nil
		}
	}
}
