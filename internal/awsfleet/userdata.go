package awsfleet

import (
	"fmt"
	"strings"
)

// UserData is the cloud-init configuration of every node: it installs
// Docker from the distribution, lets sshUser use it, and makes Swarm use
// locally loaded images without asking a registry first (the provider loads
// the mini-broker's images over SSH).
func UserData(sshUser string) string {
	var b strings.Builder
	b.WriteString("#cloud-config\n")
	b.WriteString("# minibroker swarm node: Docker Engine reachable over SSH\n")
	b.WriteString("groups: [docker]\n")
	b.WriteString("package_update: true\n")
	b.WriteString("packages: [docker.io]\n")
	b.WriteString("write_files:\n")
	b.WriteString("  - path: /etc/systemd/system/docker.service.d/minibroker.conf\n")
	b.WriteString("    content: |\n")
	b.WriteString("      [Service]\n")
	b.WriteString("      Environment=DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1\n")
	b.WriteString("runcmd:\n")
	if sshUser != "" && sshUser != "root" {
		fmt.Fprintf(&b, "  - [usermod, -aG, docker, %q]\n", sshUser)
	}
	b.WriteString("  - [systemctl, daemon-reload]\n")
	b.WriteString("  - [systemctl, enable, docker]\n")
	b.WriteString("  - [systemctl, restart, docker]\n")
	return b.String()
}
