output "manager_address" {
  description = "SSH address of the swarm manager; the Swarm API and the hub Kafka are there."
  value       = minibroker_swarm.main.manager_address
}

output "hub_bootstrap" {
  description = "Bootstrap address of the hub Kafka on the overlay network."
  value       = minibroker_swarm.main.hub_bootstrap
}

output "mirror_bootstraps" {
  description = "Bootstrap address of each mirror Kafka on the overlay network, by mirror name."
  value       = { for name, m in minibroker_mirror.node : name => m.bootstrap }
}

output "output_topics" {
  description = "Output topic of every filter, by filter group (= mirror) name, then filter name. The topics live on that group's mirror."
  value       = { for name, g in minibroker_filter_group.node : name => g.output_topics }
}

output "ca_certificate" {
  description = "PEM certificate of the CA the brokers' certificates are signed by: write it to minibroker-ca.pem beside a reader's properties."
  value       = minibroker_swarm.main.ca_certificate
}

output "readers" {
  description = "By filter name: how its owner reads the filtered stream from outside the swarm (bootstrap, topic, username, password, ca_certificate, and a librdkafka `properties` block for `minibroker consume --config`). Sensitive."
  value       = merge([for g in minibroker_filter_group.node : g.readers]...)
  sensitive   = true
}

output "report_properties" {
  description = "Kafka settings of the report's read-only user; report_command pipes them in."
  value       = minibroker_swarm.main.report_properties
  sensitive   = true
}

locals {
  # "host", "host:port" or "[v6]:port" -> host and port for ssh(1).
  manager_hp    = try(regex("^(\\[[^]]+\\]|[^:\\[\\]]+):([0-9]+)$", var.manager_host), [var.manager_host, "22"])
  manager_ssh   = "ssh -p ${local.manager_hp[1]} ${var.ssh_user}@${trimsuffix(trimprefix(local.manager_hp[0], "["), "]")}"
  report_docker = "docker run -i --rm --network ${minibroker_swarm.main.network} ${minibroker_swarm.main.workloads_image}"
}

output "report_command" {
  description = "Prints the timing report (per visit: producer send time, filter lag, time to the 20th filtered alert at each consumer): run it with sh -c \"$(terraform output -raw report_command)\". It pipes report_properties into `minibroker report --config -` in a throw-away container of the workloads image on the attachable overlay network, on the manager."
  value       = "terraform output -raw report_properties | ${local.manager_ssh} ${local.report_docker} report --config -"
}

output "schema_registry_url" {
  description = "The schema registry (Confluent's REST API): Confluent's deserializers look each alert's schema id up there."
  value       = minibroker_swarm.main.schema_registry_url
}

output "schema_registry_properties" {
  description = "Settings of the schema registry's read-only user, as Confluent's SchemaRegistryClient takes them (url, basic.auth.user.info, ssl.ca.location = minibroker-ca.pem)."
  value       = minibroker_swarm.main.schema_registry_properties
  sensitive   = true
}
