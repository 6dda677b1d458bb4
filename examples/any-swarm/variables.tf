# --- Hosts ------------------------------------------------------------------
# Existing machines with Docker Engine, reached over SSH as `host` or
# `host:port`. Every address must be distinct.

variable "manager_host" {
  description = "SSH address of the swarm manager (the hub): it runs the hub Kafka and the Swarm control plane."
  type        = string
}

variable "producer_host" {
  description = "SSH address of the host that runs the alert producer."
  type        = string
}

variable "filter_hosts" {
  description = "SSH addresses of the filter hosts. Each runs one Kafka mirror of the hub (filled by MirrorMaker 2) and a group of `filters_per_mirror` filters reading it."
  type        = list(string)

  validation {
    condition     = length(var.filter_hosts) >= 1
    error_message = "Give at least one filter host."
  }
}

variable "consumer_hosts" {
  description = "SSH addresses of the consumer hosts. Each filter has one consumer; the consumers of the filter group on filter host i run on consumer host i modulo the number of consumer hosts."
  type        = list(string)

  validation {
    condition     = length(var.consumer_hosts) >= 1
    error_message = "Give at least one consumer host."
  }
}

# --- SSH --------------------------------------------------------------------

variable "ssh_user" {
  description = "SSH user on every host; it must be allowed to use the Docker socket."
  type        = string
  default     = "root"
}

variable "ssh_private_key_file" {
  description = "Private key (OpenSSH or PEM) used for every host."
  type        = string
  default     = "~/.ssh/id_ed25519"
}

variable "known_hosts_file" {
  description = "known_hosts file holding the hosts' SSH host keys (policy `known_hosts`)."
  type        = string
  default     = "~/.ssh/known_hosts"
}

variable "host_key_policy" {
  description = "`known_hosts` checks host keys against `known_hosts_file`; `trust_on_first_use` accepts each host's key the first time and refuses a changed key afterwards."
  type        = string
  default     = "known_hosts"

  validation {
    condition     = contains(["known_hosts", "trust_on_first_use"], var.host_key_policy)
    error_message = "host_key_policy must be \"known_hosts\" or \"trust_on_first_use\"."
  }
}

variable "encrypt_network" {
  description = "Encrypt the overlay network between the nodes (IPsec; needs the esp4 and xfrm kernel modules, standard on Ubuntu)."
  type        = bool
  default     = true
}

# --- Images -----------------------------------------------------------------

variable "image_archives" {
  description = "Local `docker save` archives loaded onto the hosts that run their images, so no registry is needed; e.g. [\"../../bin/images/minibroker-workloads.tar\", \"../../bin/images/minibroker-kafka.tar\"] from `make image`."
  type        = list(string)
  default     = []
}

variable "kafka_image" {
  description = "Image of the hub and mirror Kafkas and of MirrorMaker 2, e.g. \"minibroker/kafka:dev\" when its archive is in `image_archives`. Default (null): the provider's, apache/kafka:4.3.1."
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

variable "filter_mode" {
  description = "`isolated`: one container per filter, as in 2018. `shared`: the filters of a host share one container that reads and decodes the stream once."
  type        = string
  default     = "isolated"

  validation {
    condition     = contains(["isolated", "shared"], var.filter_mode)
    error_message = "filter_mode must be \"isolated\" or \"shared\"."
  }
}

variable "filters_per_mirror" {
  description = "Filters on each filter host. Filters are named Filter001, Filter002, ... across all hosts; filter j of every host uses filter_expressions[j modulo their number]."
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
  description = "CEL expressions over `alert` (fields as in workloads/alert/schema/alert.avsc), used in turn by the filters of each host. Fluxes are in nJy: 36310 is magnitude 20."
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
