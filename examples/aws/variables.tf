# --- AWS --------------------------------------------------------------------
# Credentials come the standard AWS SDK way: AWS_ACCESS_KEY_ID and
# AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), AWS_PROFILE, ~/.aws/config and
# ~/.aws/credentials, SSO (`aws sso login`), or an instance or container role.

variable "region" {
  description = "AWS region of the fleet, e.g. \"us-east-1\". Default (null): the AWS SDK's (AWS_REGION, AWS_DEFAULT_REGION, or the profile's region)."
  type        = string
  default     = null

  validation {
    condition     = var.region == null || can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", var.region))
    error_message = "region must be an AWS region name such as \"us-east-1\", or null."
  }
}

variable "aws_profile" {
  description = "Shared-config profile (~/.aws/config) to take credentials and region from. Default (null): AWS_PROFILE, else the default profile."
  type        = string
  default     = null
}

variable "instance_type" {
  description = "EC2 instance type of all 12 nodes; the original deployment used m4.4xlarge (16 vCPU, 64 GiB). It must be x86_64, like the Ubuntu AMI and the workloads image. Changing it replaces the swarm."
  type        = string
  default     = "m4.4xlarge"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.instance_type))
    error_message = "instance_type must be an EC2 instance type such as \"m4.4xlarge\"."
  }
}

variable "producer_nodes" {
  description = "Producer nodes: 1 runs the alert producer; 0 runs none (and no producer service). The manager is always 1 node."
  type        = number
  default     = 1

  validation {
    condition     = contains([0, 1], var.producer_nodes)
    error_message = "producer_nodes must be 0 or 1."
  }
}

variable "filter_nodes" {
  description = "Filter nodes. Each runs one Kafka mirror of the hub (filled by MirrorMaker 2) and a group of `filters_per_mirror` filters reading it. Changing it scales the swarm in place and adds or removes mirrors and filter groups."
  type        = number
  default     = 5

  validation {
    condition     = var.filter_nodes >= 1 && var.filter_nodes <= 100 && floor(var.filter_nodes) == var.filter_nodes
    error_message = "filter_nodes must be a whole number from 1 to 100."
  }
}

variable "consumer_nodes" {
  description = "Consumer nodes. Every filter has one consumer; the consumers of filter node i run on consumer node i modulo consumer_nodes. Changing it scales the swarm in place."
  type        = number
  default     = 5

  validation {
    condition     = var.consumer_nodes >= 1 && var.consumer_nodes <= 100 && floor(var.consumer_nodes) == var.consumer_nodes
    error_message = "consumer_nodes must be a whole number from 1 to 100."
  }
}

variable "ami" {
  description = "AMI of every node: an x86_64 image with cloud-init whose login user is `ssh_user` (`ubuntu` on Ubuntu). Default (null): the one `ami_ssm_parameter` names when the swarm is created. Changing it replaces the swarm."
  type        = string
  default     = null

  validation {
    condition     = var.ami == null || can(regex("^ami-[0-9a-f]{8,17}$", var.ami))
    error_message = "ami must be an AMI id such as \"ami-0123456789abcdef0\", or null."
  }
}

variable "ami_ssm_parameter" {
  description = "Public SSM parameter holding the AMI id, used when `ami` is null. Default (null): the provider's, Canonical's Ubuntu 24.04 amd64 gp3 image (/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id)."
  type        = string
  default     = null

  validation {
    condition     = var.ami_ssm_parameter == null || can(regex("^/", var.ami_ssm_parameter))
    error_message = "ami_ssm_parameter must be an SSM parameter name starting with \"/\", or null."
  }
}

variable "subnet_id" {
  description = "Subnet of every node (so all 12 are in one Availability Zone, where traffic between them is free). Default (null): a default subnet of the region's default VPC. Choose one whose Availability Zone offers `instance_type`."
  type        = string
  default     = null

  validation {
    condition     = var.subnet_id == null || can(regex("^subnet-[0-9a-f]+$", var.subnet_id))
    error_message = "subnet_id must be a subnet id such as \"subnet-0123456789abcdef0\", or null."
  }
}

variable "admin_cidr_blocks" {
  description = "IPv4 CIDR blocks SSH (22/tcp) to the nodes may come from: the address of the machine that runs Terraform (e.g. [\"203.0.113.7/32\"]), a VPN's range, or the bastion's. Nothing else reaches the nodes from outside the swarm."
  type        = list(string)

  validation {
    condition     = length(var.admin_cidr_blocks) > 0 && alltrue([for c in var.admin_cidr_blocks : can(cidrnetmask(c))])
    error_message = "admin_cidr_blocks must hold at least one IPv4 CIDR block, such as \"203.0.113.7/32\"."
  }
}

variable "consumer_cidr_blocks" {
  description = "IPv4 CIDR blocks the filters' owners read their streams from (the mirrors' SASL_SSL listener, 9095/tcp, and the schema registry, 8081/tcp), e.g. [\"203.0.113.0/24\"]. Default none: no reader outside AWS."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Extra tags on every instance, volume, security group and key pair; changing them updates in place. The provider sets `Name` and the `minibroker:` tags itself."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.tags) : !startswith(lower(k), "aws:") && !startswith(k, "minibroker:") && k != "Name"])
    error_message = "tags must not use the prefix \"aws:\" (reserved by AWS), the prefix \"minibroker:\" or the key \"Name\" (set by the provider)."
  }
}

variable "name_prefix" {
  description = "Prefix of the Name tags (minibroker-manager-0, minibroker-filter-3, ...) and of the security group's and the imported key pair's names; with the subnet, the swarm's identity, so two deployments in one subnet (e.g. two workspaces) need different prefixes. Changing it replaces the swarm."
  type        = string
  default     = "minibroker"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9-]{0,31}$", var.name_prefix))
    error_message = "name_prefix must be 1 to 32 letters, digits or hyphens, starting with a letter."
  }
}

variable "root_volume_size" {
  description = "Size of each node's root EBS volume (encrypted), in GiB: Docker images, Kafka logs and container logs live there."
  type        = number
  default     = 100

  validation {
    condition     = var.root_volume_size >= 8 && var.root_volume_size <= 16384 && floor(var.root_volume_size) == var.root_volume_size
    error_message = "root_volume_size must be a whole number of GiB from 8 to 16384."
  }
}

variable "root_volume_type" {
  description = "EBS volume type of the root volumes."
  type        = string
  default     = "gp3"

  validation {
    condition     = contains(["gp3", "gp2", "io1", "io2", "standard"], var.root_volume_type)
    error_message = "root_volume_type must be one of gp3, gp2, io1, io2 or standard."
  }
}

variable "ready_timeout" {
  description = "How long to wait for the instances to run and for Docker to answer over SSH (a Go duration)."
  type        = string
  default     = "10m"

  validation {
    condition     = can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$", var.ready_timeout))
    error_message = "ready_timeout must be a Go duration such as \"10m\" or \"1h30m\"."
  }
}

# --- SSH --------------------------------------------------------------------
# The provider reaches every node's Docker Engine over SSH as `ssh_user` (by
# default `ubuntu`, the Ubuntu AMI's user), whom the nodes' cloud-init puts in
# the docker group.

variable "ssh_user" {
  description = "The AMI's login user, e.g. ubuntu for Ubuntu, admin for Debian: the provider and the output commands log in as it, and the nodes' cloud-init puts it in the docker group."
  type        = string
  default     = "ubuntu"
}

variable "ssh_private_key_file" {
  description = "Private key (OpenSSH or PEM) the provider and the output commands log in with. It must match `key_name` or the public key."
  type        = string
  default     = "~/.ssh/id_ed25519"
}

variable "public_key_file" {
  description = "OpenSSH public key imported as a key pair the swarm owns (deleted on destroy). Default (null): \"<ssh_private_key_file>.pub\", unless `key_name` is set."
  type        = string
  default     = null
}

variable "key_name" {
  description = "Name of an existing EC2 key pair in the region to use instead of importing a public key; then leave `public_key_file` null."
  type        = string
  default     = null

  validation {
    condition     = var.key_name == null || try(length(var.key_name) > 0, false)
    error_message = "key_name must not be empty; use null to import public_key_file instead."
  }
}

variable "connect_via" {
  description = "Address the provider (and the output commands) use to reach the nodes: `public_ip` (each instance gets one), or `private_ip` when Terraform runs inside the VPC, over a VPN, or through `bastion`; then the instances get no public IP and `subnet_id` needs a NAT gateway or other route out for apt to install Docker. Changing it replaces the swarm."
  type        = string
  default     = "public_ip"

  validation {
    condition     = contains(["public_ip", "private_ip"], var.connect_via)
    error_message = "connect_via must be \"public_ip\" or \"private_ip\"."
  }
}

variable "bastion" {
  description = "SSH jump host to reach the nodes' private addresses through (with connect_via = \"private_ip\"): `address` as \"host\" or \"host:port\", `user` there (default \"ubuntu\"), and optionally `host_key_fingerprint` (\"SHA256:...\", from `ssh-keygen -lf` on its host key) when `known_hosts_file` does not list it. It must accept `ssh_private_key_file` and allow TCP forwarding to the nodes' port 22. Default (null): connect directly."
  type = object({
    address              = string
    user                 = optional(string, "ubuntu")
    host_key_fingerprint = optional(string)
  })
  default = null

  validation {
    condition     = var.bastion == null || can(regex("^[^:@ ]+(:[0-9]+)?$", var.bastion.address))
    error_message = "bastion.address must be \"host\" or \"host:port\"."
  }
}

variable "known_hosts_file" {
  description = "With `bastion`: known_hosts file holding the bastion's host key, which the provider checks it against (`ssh-keyscan BASTION >> ~/.ssh/known_hosts`, once you have checked the key); null requires `bastion.host_key_fingerprint`. The nodes' own keys are new: each is trusted on first contact and kept in the state."
  type        = string
  default     = "~/.ssh/known_hosts"
}

variable "encrypt_network" {
  description = "Encrypt the overlay network between the nodes (IPsec; needs the esp4 and xfrm kernel modules, standard on Ubuntu)."
  type        = bool
  default     = true
}

# --- Images -----------------------------------------------------------------

variable "image_archives" {
  description = "Local `docker save` archives loaded onto the nodes that run their images, so no registry is needed. The workloads image is on no registry: give at least [\"<repo>/bin/images/minibroker-workloads.tar\"] from `make image`; add minibroker-kafka.tar (and kafka_image = \"minibroker/kafka:dev\") if the nodes cannot pull apache/kafka. Give [] only when `workloads_image` is on a registry the nodes reach."
  type        = list(string)

  validation {
    condition     = alltrue([for f in var.image_archives : fileexists(pathexpand(f))])
    error_message = "Every file in image_archives must exist; run `make image` at the repository root first."
  }
}

variable "kafka_image" {
  description = "Image of the hub and mirror Kafkas and of MirrorMaker 2, e.g. \"minibroker/kafka:dev\" when its archive is in `image_archives`. Default (null): the provider's, apache/kafka:4.3.1, which the nodes pull from Docker Hub."
  type        = string
  default     = null
}

variable "workloads_image" {
  description = "Image of the producer, filters and consumers. Default (null): the provider's, minibroker/workloads:dev (load it with `image_archives`)."
  type        = string
  default     = null
}

# --- Producer ---------------------------------------------------------------

variable "alerts_per_visit" {
  description = "Alerts in each visit."
  type        = number
  default     = 10000
}

variable "visit_interval" {
  description = "Time between visits (a Go duration)."
  type        = string
  default     = "39s"
}

variable "visits" {
  description = "Visits to send, then stop; 0 sends forever."
  type        = number
  default     = 0
}

variable "cutout_bytes" {
  description = "Bytes of each of the 3 cutouts of a synthetic alert: 26400 gives ~80 KB alerts, 0 small ones (~0.5 KB)."
  type        = number
  default     = 26400
}

# --- Kafka ------------------------------------------------------------------

variable "hub_heap_mb" {
  description = "JVM heap of the hub Kafka, in MiB."
  type        = number
  default     = 1024
}

variable "mirror_heap_mb" {
  description = "JVM heap of each mirror Kafka, in MiB."
  type        = number
  default     = 1024
}

variable "mirror_maker_heap_mb" {
  description = "JVM heap of each mirror's MirrorMaker 2, in MiB."
  type        = number
  default     = 512
}

# --- Filters ----------------------------------------------------------------
# As in examples/any-swarm; keep the two modules' defaults the same
# (provider/examples_test.go checks the filter expressions).

variable "filter_mode" {
  description = "`isolated`: one container per filter, as in 2018. `shared`: the filters of a node share one container that reads and decodes the stream once."
  type        = string
  default     = "isolated"

  validation {
    condition     = contains(["isolated", "shared"], var.filter_mode)
    error_message = "filter_mode must be \"isolated\" or \"shared\"."
  }
}

variable "filters_per_mirror" {
  description = "Filters on each filter node. Filters are named Filter001, Filter002, ... across all nodes; filter j of every node uses filter_expressions[j modulo their number]."
  type        = number
  default     = 20

  validation {
    condition     = var.filters_per_mirror >= 1 && floor(var.filters_per_mirror) == var.filters_per_mirror
    error_message = "filters_per_mirror must be a whole number of at least 1."
  }
}

variable "max_per_visit" {
  description = "Most alerts each filter passes on per visit (the report times the arrival of the last one); -1 for no cap."
  type        = number
  default     = 20
}

variable "filter_expressions" {
  description = "CEL expressions over `alert` (fields as in workloads/alert/schema/alert.avsc), used in turn by the filters of each node. Fluxes are in nJy: 36310 is magnitude 20."
  type        = list(string)
  default = [
    # The 2018 prototype's filter: SNR above 5 and brighter than magnitude 20.
    "alert.diaSource.snr > 5.0 && alert.diaSource.psfFlux > 36310.0",
    # Brighter than magnitude 19.
    "alert.diaSource.snr > 5.0 && alert.diaSource.psfFlux > 91201.0",
    # Between magnitudes 21 and 20.
    "alert.diaSource.snr > 5.0 && alert.diaSource.psfFlux > 14454.0 && alert.diaSource.psfFlux < 36310.0",
    # Strong fading (negative difference flux).
    "alert.diaSource.psfFlux < -20000.0",
    # Significant fading.
    "alert.diaSource.psfFlux < 0.0 && alert.diaSource.snr > 10.0",
    # Very significant detections.
    "alert.diaSource.snr > 50.0",
    # No known object: transient candidates.
    "alert.diaObject == null && alert.diaSource.snr > 10.0",
    # First detection of a new object.
    "alert.diaObject != null && alert.diaObject.nDiaSources == 1 && alert.diaSource.snr > 8.0",
    # Well-sampled variables.
    "alert.diaObject != null && alert.diaObject.nDiaSources >= 20 && alert.diaSource.snr > 10.0",
    # Long history and bright.
    "alert.prvDiaSources != null && size(alert.prvDiaSources) >= 10 && alert.diaSource.snr > 20.0",
    # Twice as bright as an earlier detection in the same band.
    "alert.prvDiaSources != null && alert.prvDiaSources.exists(p, p.band == alert.diaSource.band && p.snr > 5.0 && alert.diaSource.psfFlux > 2.0 * p.psfFlux)",
    # r-band outburst over the object's mean r flux.
    "alert.diaSource.band == 'r' && alert.diaObject != null && alert.diaObject.r_psfFluxMean != null && alert.diaSource.psfFlux > 1.5 * alert.diaObject.r_psfFluxMean",
    # Bright in r.
    "alert.diaSource.snr > 10.0 && alert.diaSource.band == 'r'",
    # Blue bands.
    "alert.diaSource.band in ['u', 'g'] && alert.diaSource.snr > 7.0",
    # Red bands, brighter than magnitude 21.
    "alert.diaSource.band in ['z', 'y'] && alert.diaSource.psfFlux > 14454.0",
    # Bright, southern sky.
    "alert.diaSource.snr > 5.0 && alert.diaSource.psfFlux > 36310.0 && alert.diaSource.dec < 0.0",
    # Right ascension 12h to 24h.
    "alert.diaSource.ra > 180.0 && alert.diaSource.snr > 8.0",
    # Far south (the Magellanic Clouds' declinations).
    "alert.diaSource.dec < -60.0 && alert.diaSource.snr > 5.0",
    # The centre detector.
    "alert.diaSource.detector == 94 && alert.diaSource.snr > 5.0",
    # Near a CCD edge (artefact checks).
    "alert.diaSource.snr > 5.0 && (alert.diaSource.x < 100.0 || alert.diaSource.x > 3972.0 || alert.diaSource.y < 100.0 || alert.diaSource.y > 3900.0)",
  ]

  validation {
    condition     = length(var.filter_expressions) >= 1
    error_message = "Give at least one filter expression."
  }
}
