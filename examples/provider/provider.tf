terraform {
  required_providers {
    minibroker = {
      source = "minibroker/minibroker"
    }
  }
}

# Every Docker Engine is reached over SSH with this key; the user must be
# allowed to use the Docker socket (root by default).
provider "minibroker" {
  ssh_user         = "root"
  ssh_private_key  = file("~/.ssh/id_ed25519")
  known_hosts_file = pathexpand("~/.ssh/known_hosts")

  # Images of the services. The workloads image is built by `make image` and
  # loaded onto the nodes by minibroker_swarm.image_archives.
  kafka_image     = "apache/kafka:4.3.1"
  workloads_image = "minibroker/workloads:dev"
}

# Hosts not yet in known_hosts: accept each node's key the first time and keep
# its fingerprint in state, refusing a changed key afterwards.
#
# provider "minibroker" {
#   ssh_private_key = file("~/.ssh/id_ed25519")
#   host_key_policy = "trust_on_first_use"
# }
