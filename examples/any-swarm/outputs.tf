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

locals {
  # "host", "host:port" or "[v6]:port" -> host and port for ssh(1).
  producer_hp   = try(regex("^(\\[[^]]+\\]|[^:\\[\\]]+):([0-9]+)$", var.producer_host), [var.producer_host, "22"])
  producer_ssh  = "ssh -p ${local.producer_hp[1]} ${var.ssh_user}@${trimsuffix(trimprefix(local.producer_hp[0], "["), "]")}"
  report_docker = "docker run --rm --network ${minibroker_swarm.main.network} ${minibroker_swarm.main.workloads_image}"
}

output "report_command" {
  description = "Prints the timing report (per visit: producer send time, filter lag, time to the 20th filtered alert at each consumer). It runs `minibroker report` in a throw-away container on the attachable overlay network, on the producer host, which has the workloads image (the manager has only the Kafka image)."
  value       = "${local.producer_ssh} ${local.report_docker} report --bootstrap ${minibroker_swarm.main.hub_bootstrap}"
}
