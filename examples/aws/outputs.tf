output "manager_address" {
  description = "SSH address of the swarm manager; the Swarm API and the hub Kafka are there."
  value       = minibroker_swarm.main.manager_address
}

output "instances" {
  description = "The EC2 instances: id, role (manager, producer, filter, consumer), index within the role, private_ip and public_ip."
  value       = minibroker_swarm.main.instances
}

output "security_group_id" {
  description = "The swarm's security group: SSH from admin_cidr_blocks, Swarm and Kafka ports between its members only."
  value       = minibroker_swarm.main.security_group_id
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

locals {
  # Address of each node as the provider reaches it, by "<role>-<index>".
  node_address = {
    for i in minibroker_swarm.main.instances :
    "${i.role}-${i.index}" => (var.connect_via == "public_ip" ? i.public_ip : i.private_ip)
  }

  # ssh(1) as the provider connects: the same key, user and jump host. A new
  # node's host key is accepted on first use, as the provider does (compare
  # with minibroker_swarm.main.host_keys).
  ssh = join(" ", concat(
    ["ssh", "-i", pathexpand(var.ssh_private_key_file), "-o", "StrictHostKeyChecking=accept-new"],
    var.bastion == null ? [] : ["-J", "${var.bastion.user}@${var.bastion.address}"],
  ))

}

output "ssh_commands" {
  description = "ssh command to log in to each node, by \"<role>-<index>\" (manager-0, producer-0, filter-0 ... filter-4, consumer-0 ... consumer-4)."
  value       = { for node, address in local.node_address : node => "${local.ssh} ${var.ssh_user}@${address}" }
}

output "ssh_manager" {
  description = "ssh command to log in to the swarm manager (docker service ls, docker service logs mb-node1-filter001-c, ...)."
  value       = "${local.ssh} ${var.ssh_user}@${local.node_address["manager-0"]}"
}

output "report_command" {
  description = "Prints the timing report (per visit: producer send time, filter lag, time to the 20th filtered alert at each consumer): run it with sh -c \"$(terraform output -raw report_command)\". `minibroker report` must run on the overlay network (it reads the timing topic on mb-hub:9092); this pipes report_properties into it in a throw-away container of the workloads image on the manager."
  value       = "terraform output -raw report_properties | ${local.ssh} ${var.ssh_user}@${local.node_address["manager-0"]} docker run -i --rm --network ${minibroker_swarm.main.network} ${minibroker_swarm.main.workloads_image} report --config -"
}

output "ca_certificate" {
  description = "PEM certificate of the CA the brokers' certificates are signed by: write it to minibroker-ca.pem beside a reader's properties."
  value       = minibroker_swarm.main.ca_certificate
}

output "readers" {
  description = "By filter name: how its owner reads the filtered stream from outside AWS (bootstrap, topic, username, password, ca_certificate, and a librdkafka `properties` block for `minibroker consume --config`). Sensitive. Needs consumer_cidr_blocks to include the reader's address."
  value       = merge([for g in minibroker_filter_group.node : g.readers]...)
  sensitive   = true
}

output "report_properties" {
  description = "Kafka settings of the report's read-only user; report_command pipes them in."
  value       = minibroker_swarm.main.report_properties
  sensitive   = true
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
