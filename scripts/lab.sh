#!/usr/bin/env bash
# Start or remove a lab of "hosts" on this machine: each node has its own
# network/mount/UTS/pid namespaces, dockerd and sshd (root login with the lab's
# key), on the bridge mblabN at 198.18.N.(10+i). See internal/testbed/lab.
#
#   scripts/lab.sh up N [PREFIX]  start N nodes (hostnames PREFIX1..N, default
#                                 node1..), print addresses, Docker sockets, the
#                                 ssh key and known_hosts paths, then stay in the
#                                 foreground: Ctrl-C (or SIGTERM) removes the lab
#   scripts/lab.sh ls             list labs on this machine and their owners
#   scripts/lab.sh down [LAB...]  remove the given labs, or ALL labs, including
#                                 those of running tests (use `ls` first)
#
# There is no state file: `up` owns its lab while it runs. If `up` is killed
# with SIGKILL its nodes die at once, and the rest (netns, bridge, iptables
# rules, directory) is removed by `down` or by the next `up`/test.
#
# Needs root and: apt-get install -y docker.io openssh-server iproute2 iptables
# (busybox-static too for the lab's own test). No host dockerd is needed.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

case "${1:-}" in
  up|ls|down) ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
if [ "$(id -u)" != 0 ]; then
  echo "lab.sh: must run as root" >&2
  exit 1
fi

# Build, then exec the binary (rather than `go run`), so that signals reach
# mblab itself and it can remove the lab.
bin="${TMPDIR:-/tmp}/mblab-$(id -u)"
(cd "$repo" && go build -o "$bin" ./internal/testbed/lab/cmd/mblab)
exec "$bin" "$@"
