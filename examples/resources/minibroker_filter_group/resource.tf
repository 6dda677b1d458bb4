# Three filters on mirror m0's node, one container per filter, each with a
# consumer of its output topic on a consumer node.
resource "minibroker_filter_group" "g0" {
  swarm_id          = minibroker_swarm.main.id
  manager_address   = minibroker_swarm.main.manager_address
  kafka_credentials = minibroker_swarm.main.kafka_credentials
  name              = "g0"
  mirror            = minibroker_mirror.m0.name
  mode              = "isolated"

  filters = [
    {
      # The 2018 prototype's filter: SNR above 5, brighter than 20th magnitude.
      name       = "Filter001"
      expression = "alert.diaSource.snr > 5.0 && alert.diaSource.psfFlux > 36310.0"
    },
    {
      name          = "bright-r"
      expression    = "alert.diaSource.snr > 10.0 && alert.diaSource.band == 'r'"
      max_per_visit = 50
      output        = "bright-r-band"
      readers       = ["alice"] # a second reader, besides the filter's own
      cost_limit    = 200000    # CEL cost units per evaluation (default 100000, at most 1000000)
    },
    {
      name          = "dimmings"
      expression    = "alert.diaSource.psfFlux < -20000.0"
      max_per_visit = -1 # no cap
      consumer_node = 0  # pin its consumer to the first consumer node
    },
  ]
}

# Many filters sharing one read and one decode of the stream.
resource "minibroker_filter_group" "shared" {
  swarm_id          = minibroker_swarm.main.id
  manager_address   = minibroker_swarm.main.manager_address
  kafka_credentials = minibroker_swarm.main.kafka_credentials
  name              = "shared"
  mirror            = minibroker_mirror.m0.name
  mode              = "shared"

  filters = [for i in range(20) : {
    name       = format("Shared%03d", i + 1)
    expression = "alert.diaSource.snr > ${5 + i}.0"
  }]

  # One process does the work of 20 filters: it may use both cores of its
  # node and 2 GiB, and has half a core set aside. The consumers keep their
  # defaults.
  resources = {
    filter = { cpus = 2, memory_mb = 2048, reserve_cpus = 0.5, reserve_memory_mb = 256 }
  }
}

output "output_topics" {
  value = minibroker_filter_group.g0.output_topics
}

# How each filter's owner reads their stream from outside the swarm:
# terraform output -json readers | jq -r '.Filter001.properties'
output "readers" {
  value     = minibroker_filter_group.g0.readers
  sensitive = true
}
