# Five existing hosts with Docker Engine, reachable over SSH.
resource "minibroker_swarm" "main" {
  hosts = [
    { address = "10.0.0.10", role = "manager" }, # hub Kafka and swarm control plane
    { address = "10.0.0.11", role = "producer" },
    { address = "10.0.0.12", role = "filter" }, # filter node 0
    { address = "10.0.0.13", role = "filter" }, # filter node 1
    { address = "10.0.0.14:2222", role = "consumer", advertise_address = "192.168.1.14" },
  ]

  # `docker save` archives from `make image`, loaded onto the nodes that run
  # their images, so no registry is needed.
  image_archives = ["${path.module}/bin/images/minibroker-workloads.tar"]

  hub = {
    heap_mb           = 2048
    retention_minutes = 120
  }

  # One visit of 10,000 ~80 KB alerts every 39 s, forever (the defaults).
  producer = {
    alerts_per_visit = 10000
    interval         = "39s"
    cutout_bytes     = 26400
  }

  # CPU and memory limits and reservations by role; roles and fields left
  # out keep their defaults (the hub's memory limit follows its heap).
  resources = {
    producer = { cpus = 1, memory_mb = 4096 }
  }
}

output "hub_bootstrap" {
  value = minibroker_swarm.main.hub_bootstrap # "mb-hub:9092"
}
