# A new VPC network with one regional subnetwork (secondary ranges for GKE when given) and
# Cloud NAT, or an existing network by id. Private service access lets Cloud SQL and
# Memorystore sit on private IPs inside it.

locals {
  network_id = var.provision_network ? google_compute_network.this[0].id : var.existing_network_id
  secondary_ranges = {
    for name, cidr in { pods = var.gke_pods_cidr, services = var.gke_services_cidr } : name => cidr if cidr != ""
  }
}

resource "google_compute_network" "this" {
  count                   = var.provision_network ? 1 : 0
  name                    = local.name
  auto_create_subnetworks = false
}

# Ingress is denied unless a more specific rule (GKE's own, the load balancers') allows it.
resource "google_compute_firewall" "deny_ingress" {
  count         = var.provision_network ? 1 : 0
  name          = "${local.name}-deny-ingress"
  network       = google_compute_network.this[0].id
  direction     = "INGRESS"
  priority      = 65534
  source_ranges = ["0.0.0.0/0"]

  deny {
    protocol = "all"
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_subnetwork" "this" {
  count                    = var.provision_network ? 1 : 0
  name                     = "${local.name}-${var.region}"
  region                   = var.region
  network                  = google_compute_network.this[0].id
  ip_cidr_range            = var.network_cidr
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_5_SEC"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }

  dynamic "secondary_ip_range" {
    for_each = local.secondary_ranges
    content {
      range_name    = secondary_ip_range.key
      ip_cidr_range = secondary_ip_range.value
    }
  }
}

resource "google_compute_router" "this" {
  count   = var.provision_network ? 1 : 0
  name    = "${local.name}-router"
  region  = var.region
  network = google_compute_network.this[0].id
}

resource "google_compute_router_nat" "this" {
  count                              = var.provision_network ? 1 : 0
  name                               = "${local.name}-nat"
  router                             = google_compute_router.this[0].name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"
}

resource "google_compute_global_address" "private_services" {
  count         = length(var.cloud_sql_databases) + length(var.memorystore_instances) > 0 ? 1 : 0
  name          = "${local.name}-private-services"
  purpose       = "VPC_PEERING"
  address_type  = "INTERNAL"
  prefix_length = 20
  network       = local.network_id
}

resource "google_service_networking_connection" "private_services" {
  count                   = length(google_compute_global_address.private_services)
  network                 = local.network_id
  service                 = "servicenetworking.googleapis.com"
  reserved_peering_ranges = [google_compute_global_address.private_services[0].name]
}
