package kafkabed

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
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

// newClusterID returns a random Kafka cluster id: 16 bytes in URL-safe base64
// without padding (22 characters), like `kafka-storage random-uuid`. Ids that
// start with '-' are avoided, as the storage tool would read one as a flag.
func newClusterID() (string, error) {
	for {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("kafkabed: cluster id: %w", err)
		}
		id := base64.RawURLEncoding.EncodeToString(b[:])
		if id[0] != '-' {
			return id, nil
		}
	}
}
