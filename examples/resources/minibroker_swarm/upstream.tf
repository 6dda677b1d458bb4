# A swarm fed from an upstream alert stream, such as Rubin's, instead of the
# synthetic producer: mb-ingest, on the producer node, relays the upstream
# topic into the hub exactly once and imports the upstream's schemas, ids
# kept, into the swarm's schema registry.
variable "upstream_username" {
  type = string
}

variable "upstream_password" {
  type      = string
  sensitive = true
}

# PEM certificate of the CA at the root of the upstream brokers' (and here
# its registry's) certificate chain, for an upstream with a private CA.
# Null (the default) for certificates from a public CA: the workloads image
# carries Debian's CA bundle.
variable "upstream_ca_certificate" {
  type    = string
  default = null
}

resource "minibroker_swarm" "fed" {
  hosts = [
    { address = "10.0.0.10", role = "manager" },
    { address = "10.0.0.11", role = "producer" }, # runs the relay, mb-ingest
    { address = "10.0.0.12", role = "filter" },
    { address = "10.0.0.13", role = "consumer" },
  ]
  image_archives = ["${path.module}/bin/images/minibroker-workloads.tar"]

  # No producer block: the producer does not run while upstream is set.
  upstream = {
    bootstrap      = "alerts.example.org:9094"
    topic          = "alerts-simulated"
    username       = var.upstream_username # SASL/SCRAM-SHA-512 over TLS
    password       = var.upstream_password
    ca_certificate = var.upstream_ca_certificate

    schema_registry_url = "https://schemas.example.org"

    # The relay's first run starts at the topic's end (from_beginning =
    # true copies what the upstream retains, for the filters running then);
    # later runs resume where it stopped.
    from_beginning = false
  }

  # The relay takes the producer's resources.
  resources = {
    producer = { cpus = 1, memory_mb = 2048 }
  }
}

resource "minibroker_mirror" "fed" {
  swarm_id          = minibroker_swarm.fed.id
  manager_address   = minibroker_swarm.fed.manager_address
  kafka_credentials = minibroker_swarm.fed.kafka_credentials
  name              = "m0"
  node_index        = 0
}

resource "minibroker_filter_group" "fed" {
  swarm_id          = minibroker_swarm.fed.id
  manager_address   = minibroker_swarm.fed.manager_address
  kafka_credentials = minibroker_swarm.fed.kafka_credentials
  name              = "g0"
  mirror            = minibroker_mirror.fed.name
  # An upstream's alerts carry none of the producer's mb-* headers: a
  # filter closes a visit once every partition has delivered a later
  # visit's alert, or this long after the visit's last alert.
  visit_quiet_time = "45s"

  filters = [{
    name       = "bright"
    expression = "alert.diaSource.snr > 50.0"
  }]
}
