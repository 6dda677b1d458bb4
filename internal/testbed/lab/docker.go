package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
)

// engineClient returns an HTTP client whose every request goes to the Docker
// Engine listening on the unix socket sock (use any host in URLs).
func engineClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		DisableKeepAlives: true,
	}}
}

// ping checks that the engine on sock answers GET /_ping with 200 OK.
func ping(ctx context.Context, sock string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/_ping", nil)
	if err != nil {
		return err
	}
	resp, err := engineClient(sock).Do(req)
	if err != nil {
		return fmt.Errorf("ping engine at %s: %w", sock, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ping engine at %s: status %s", sock, resp.Status)
	}
	return nil
}

// LoadImage loads a `docker save` archive into the engine of node (1-based:
// node 1 is Nodes()[0]) through the node's Docker socket, like `docker load`.
// Any node's engine, however the node was added, can also be reached
// directly at Node.DockerSocket.
func (l *Lab) LoadImage(ctx context.Context, node int, archivePath string) error {
	nodes := l.Nodes()
	if node < 1 || node > len(nodes) {
		return fmt.Errorf("load image: node %d out of range 1..%d", node, len(nodes))
	}
	nd := nodes[node-1]
	f, err := os.Open(archivePath)
	if err != nil {
		return fmt.Errorf("load image on %s: %w", nd.Name, err)
	}
	defer f.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://docker/images/load?quiet=1", f)
	if err != nil {
		return fmt.Errorf("load image on %s: %w", nd.Name, err)
	}
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := engineClient(nd.DockerSocket).Do(req)
	if err != nil {
		return fmt.Errorf("load image %s on %s: %w", archivePath, nd.Name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("load image %s on %s: status %s: %s", archivePath, nd.Name, resp.Status, b)
	}
	// The body is a stream of JSON messages; a failure shows as "error".
	dec := json.NewDecoder(resp.Body)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&msg); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("load image %s on %s: read response: %w", archivePath, nd.Name, err)
		}
		if msg.Error != "" {
			return fmt.Errorf("load image %s on %s: %s", archivePath, nd.Name, msg.Error)
		}
	}
}
