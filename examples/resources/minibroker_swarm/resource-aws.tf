# Twelve new EC2 instances (1 manager, 1 producer, 5 filter and 5 consumer
# nodes), created with the swarm and terminated with it. AWS credentials and
# the default region come the standard AWS SDK way (AWS_PROFILE, AWS_REGION,
# ~/.aws/config, SSO, environment variables or an instance role).
provider "minibroker" {
  ssh_user        = "ubuntu" # the Ubuntu AMI's user, put in the docker group by cloud-init
  ssh_private_key = file("~/.ssh/id_ed25519")
  host_key_policy = "trust_on_first_use" # new instances: keep each host key on first contact
}

resource "minibroker_swarm" "main" {
  aws = {
    region         = "us-east-1"
    instance_type  = "m4.4xlarge"
    producer_nodes = 1
    filter_nodes   = 5 # scales in place
    consumer_nodes = 5 # scales in place

    # Imported as a key pair the swarm owns (or key_name = "an-existing-key-pair").
    public_key = file("~/.ssh/id_ed25519.pub")
    # Only SSH (22/tcp) is open, and only from here; the Swarm and Kafka ports
    # are open between the swarm's own instances.
    admin_cidr_blocks = ["203.0.113.7/32"]

    root_volume_size = 100 # GiB, encrypted gp3
    tags             = { project = "alerts" }
  }

  # Loaded onto the new nodes over SSH: the workloads image is on no registry.
  image_archives = ["${path.module}/bin/images/minibroker-workloads.tar"]

  producer = {
    alerts_per_visit = 10000
    interval         = "39s"
  }
}

output "instances" {
  value = minibroker_swarm.main.instances # [{ id, role, index, private_ip, public_ip }, ...]
}

output "manager_address" {
  value = minibroker_swarm.main.manager_address # give it to minibroker_mirror and minibroker_filter_group
}
