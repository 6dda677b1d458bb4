provider "minibroker" {
  # The AMI's login user; cloud-init puts it in the docker group.
  ssh_user        = var.ssh_user
  ssh_private_key = file(pathexpand(var.ssh_private_key_file))
  # The instances are new, so their host keys are in no known_hosts file:
  # each node's key is accepted on first contact and kept in the state
  # (minibroker_swarm.main.host_keys); a changed key is refused afterwards.
  host_key_policy = "trust_on_first_use"
  bastion         = var.bastion
  # With a bastion, its host key is checked against this file (or against
  # bastion.host_key_fingerprint); one of them is required.
  known_hosts_file = var.bastion != null && var.known_hosts_file != null ? pathexpand(var.known_hosts_file) : null
  kafka_image      = var.kafka_image
  workloads_image  = var.workloads_image
}

locals {
  # The key pair: an existing one (key_name), or the public key imported as
  # a key pair the swarm owns, by default the one beside the private key.
  public_key = var.key_name != null ? null : trimspace(file(pathexpand(coalesce(var.public_key_file, "${var.ssh_private_key_file}.pub"))))

  # One mirror and one filter group per filter node, keyed node1, node2, ...
  # as in examples/any-swarm. The mirror's Kafka is the service (and DNS
  # name) mb-mirror-nodeN on the overlay network.
  filter_nodes = {
    for i in range(var.filter_nodes) : "node${i + 1}" => { index = i }
  }
}

resource "minibroker_swarm" "main" {
  encrypt_network = var.encrypt_network
  # 1 manager (Swarm control plane and hub Kafka), producer_nodes producer,
  # filter_nodes filter and consumer_nodes consumer instances: 12 m4.4xlarge
  # with the defaults, as in 2018.
  aws = {
    region               = var.region
    profile              = var.aws_profile
    instance_type        = var.instance_type
    producer_nodes       = var.producer_nodes
    filter_nodes         = var.filter_nodes
    consumer_nodes       = var.consumer_nodes
    ami                  = var.ami
    ami_ssm_parameter    = var.ami_ssm_parameter
    subnet_id            = var.subnet_id
    key_name             = var.key_name
    public_key           = local.public_key
    admin_cidr_blocks    = var.admin_cidr_blocks
    consumer_cidr_blocks = length(var.consumer_cidr_blocks) > 0 ? var.consumer_cidr_blocks : null
    root_volume_size     = var.root_volume_size
    root_volume_type     = var.root_volume_type
    tags                 = length(var.tags) > 0 ? var.tags : null
    connect_via          = var.connect_via
    name_prefix          = var.name_prefix
    ready_timeout        = var.ready_timeout
  }

  image_archives = length(var.image_archives) > 0 ? [for f in var.image_archives : pathexpand(f)] : null

  hub = {
    heap_mb = var.hub_heap_mb
  }

  producer = {
    enabled          = var.producer_nodes > 0
    alerts_per_visit = var.alerts_per_visit
    interval         = var.visit_interval
    visits           = var.visits
    cutout_bytes     = var.cutout_bytes
  }

  lifecycle {
    precondition {
      condition     = var.key_name == null || var.public_key_file == null
      error_message = "Set key_name (an existing key pair) or public_key_file (a public key to import), not both."
    }
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
  # consumers of a node's filters all run on one consumer node.
  filters = [
    for j in range(var.filters_per_mirror) : {
      name          = format("Filter%03d", each.value.index * var.filters_per_mirror + j + 1)
      expression    = var.filter_expressions[j % length(var.filter_expressions)]
      max_per_visit = var.max_per_visit
      consumer_node = each.value.index % var.consumer_nodes
    }
  ]
}
