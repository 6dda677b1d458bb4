# A Kafka mirror of the hub on the first filter node (node_index 0), filled by
# MirrorMaker 2. Its broker is reachable on the overlay network as mb-mirror-m0.
resource "minibroker_mirror" "m0" {
  swarm_id          = minibroker_swarm.main.id
  manager_address   = minibroker_swarm.main.manager_address
  kafka_credentials = minibroker_swarm.main.kafka_credentials
  name              = "m0"
  node_index        = 0
  # Users read their streams at the node's address, port 9095 (SASL_SSL);
  # set external_address when they dial another name.
  external_port = 9095

  heap_mb              = 1024
  retention_minutes    = 60
  mirror_maker_heap_mb = 512
  mirror_maker_properties = {
    "hub->mirror.tasks.max" = "4"
  }

  # The broker's memory limit follows heap_mb (here 1024 + 3072 MiB);
  # MirrorMaker 2 gets at most one core and 1.5 GiB.
  resources = {
    kafka        = { reserve_cpus = 0.5 }
    mirror_maker = { cpus = 1, memory_mb = 1536 }
  }
}

output "mirror_bootstrap" {
  value = minibroker_mirror.m0.bootstrap # "mb-mirror-m0:9092"
}

output "mirror_external_bootstrap" {
  value = minibroker_mirror.m0.external_bootstrap # e.g. "10.0.0.12:9095"
}
