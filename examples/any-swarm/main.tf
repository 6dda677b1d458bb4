provider "minibroker" {
  ssh_user         = var.ssh_user
  ssh_private_key  = file(pathexpand(var.ssh_private_key_file))
  host_key_policy  = var.host_key_policy
  known_hosts_file = var.host_key_policy == "known_hosts" ? pathexpand(var.known_hosts_file) : null
  kafka_image      = var.kafka_image
  workloads_image  = var.workloads_image
}

locals {
  # One mirror and one filter group per filter host, keyed node1, node2, ...
  # The mirror's Kafka is the service (and DNS name) mb-mirror-nodeN.
  filter_nodes = {
    for i, address in var.filter_hosts : "node${i + 1}" => { index = i, address = address }
  }
}

resource "minibroker_swarm" "main" {
  encrypt_network = var.encrypt_network
  hosts = concat(
    [
      { address = var.manager_host, role = "manager" },
      { address = var.producer_host, role = "producer" },
    ],
    [for address in var.filter_hosts : { address = address, role = "filter" }],
    [for address in var.consumer_hosts : { address = address, role = "consumer" }],
  )

  image_archives = length(var.image_archives) > 0 ? var.image_archives : null

  hub = {
    heap_mb = var.hub_heap_mb
  }

  producer = {
    alerts_per_visit = var.alerts_per_visit
    interval         = var.visit_interval
    visits           = var.visits
    cutout_bytes     = var.cutout_bytes
  }
}

resource "minibroker_mirror" "node" {
  for_each = local.filter_nodes

  swarm_id          = minibroker_swarm.main.id
  manager_address   = minibroker_swarm.main.manager_address
  kafka_credentials = minibroker_swarm.main.kafka_credentials
  name              = each.key
  node_index        = each.value.index
  heap_mb           = var.mirror_heap_mb

  mirror_maker_heap_mb = var.mirror_maker_heap_mb
}

resource "minibroker_filter_group" "node" {
  for_each = local.filter_nodes

  swarm_id          = minibroker_swarm.main.id
  manager_address   = minibroker_swarm.main.manager_address
  kafka_credentials = minibroker_swarm.main.kafka_credentials
  name              = each.key
  mirror            = minibroker_mirror.node[each.key].name
  mode              = var.filter_mode

  # Filter001..Filter020 on node1, Filter021..Filter040 on node2, ...; the
  # consumers of a host's filters all run on one consumer host.
  filters = [
    for j in range(var.filters_per_mirror) : {
      name          = format("Filter%03d", each.value.index * var.filters_per_mirror + j + 1)
      expression    = var.filter_expressions[j % length(var.filter_expressions)]
      max_per_visit = var.max_per_visit
      consumer_node = each.value.index % length(var.consumer_hosts)
    }
  ]
}
