# GKE (VPC-native, workload identity, Dataplane V2) with one autoscaled node pool sized from
# the Spec, and container.admin for the Spec's cluster admins. The API endpoint answers the
# Spec's authorised CIDRs only (the runner's among them, for post-apply); nodes run as their
# own service account with the minimal node roles.

data "google_compute_zones" "available" {
  region = var.region
  status = "UP"
}

locals {
  # A regional pool repeats its counts in every zone: the Spec's counts are totals, spread over
  # (at most) three zones.
  node_zones = slice(sort(data.google_compute_zones.available.names), 0, min(3, length(data.google_compute_zones.available.names)))
}

resource "google_container_cluster" "this" {
  # checkov:skip=CKV_GCP_12:Dataplane V2 (ADVANCED_DATAPATH) enforces network policies; the legacy network_policy addon must stay off with it
  # checkov:skip=CKV_GCP_69:the default pool is removed; the only pool sets workload_metadata_config GKE_METADATA
  # checkov:skip=CKV_GCP_61:the subnet's VPC flow logs are on; intranode flows are observed by Dataplane V2, not mirrored to the VPC
  # checkov:skip=CKV_GCP_65:Google Groups for RBAC needs a Workspace security group domain the Spec does not have
  name                     = "${local.name}-gke"
  location                 = var.region
  min_master_version       = var.gke_cluster_version
  network                  = local.network_id
  subnetwork               = var.provision_network ? google_compute_subnetwork.this[0].id : null
  networking_mode          = "VPC_NATIVE"
  datapath_provider        = "ADVANCED_DATAPATH"
  remove_default_node_pool = true
  initial_node_count       = 1
  deletion_protection      = var.production
  resource_labels          = var.labels

  release_channel {
    channel = var.gke_release_channel
  }

  ip_allocation_policy {
    cluster_secondary_range_name  = var.provision_network && var.gke_pods_cidr != "" ? "pods" : null
    services_secondary_range_name = var.provision_network && var.gke_services_cidr != "" ? "services" : null
  }

  dynamic "private_cluster_config" {
    for_each = var.gke_private_nodes ? [1] : []
    content {
      enable_private_nodes    = true
      enable_private_endpoint = false
      master_ipv4_cidr_block  = "172.16.0.0/28"
    }
  }

  # The Spec's CIDRs plus the runner's egress (runner.auto.tfvars.json); none = reachable
  # from inside the VPC only.
  master_authorized_networks_config {
    dynamic "cidr_blocks" {
      for_each = distinct(concat(var.cluster_api_authorized_cidrs, var.runner_egress_cidrs))
      content {
        cidr_block   = cidr_blocks.value
        display_name = "authorised ${cidr_blocks.value}"
      }
    }
  }

  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }

  binary_authorization {
    evaluation_mode = "PROJECT_SINGLETON_POLICY_ENFORCE"
  }

  dynamic "database_encryption" {
    for_each = var.encryption_key != "" ? [var.encryption_key] : []
    content {
      state    = "ENCRYPTED"
      key_name = database_encryption.value
    }
  }

  workload_identity_config {
    workload_pool = "${var.project_id}.svc.id.goog"
  }
}

# A stable id of at most 30 characters that never ends in a hyphen, whatever the names' length.
resource "google_service_account" "nodes" {
  account_id   = "gke-nodes-${substr(md5(local.name), 0, 12)}"
  display_name = "GKE nodes of ${local.name}"
}

# What nodes need: logs, metrics, metadata (the default node role) and pulling images.
resource "google_project_iam_member" "nodes" {
  for_each = toset(["roles/container.defaultNodeServiceAccount", "roles/artifactregistry.reader"])
  project  = var.project_id
  role     = each.value
  member   = "serviceAccount:${google_service_account.nodes.email}"
}

resource "google_container_node_pool" "default" {
  name               = "default"
  cluster            = google_container_cluster.this.id
  location           = var.region
  node_locations     = local.node_zones
  initial_node_count = ceil(var.gke_node_desired_size / length(local.node_zones))

  autoscaling {
    total_min_node_count = var.gke_node_min_size
    total_max_node_count = var.gke_node_max_size
    location_policy      = "BALANCED"
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type    = var.gke_instance_types[0]
    disk_size_gb    = var.gke_disk_size_gb
    spot            = var.gke_spot
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
    labels          = var.labels

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
  }

  # The autoscaler owns the node count once the pool exists.
  lifecycle {
    ignore_changes = [initial_node_count]
  }

  depends_on = [google_project_iam_member.nodes]
}

resource "google_project_iam_member" "cluster_admin" {
  for_each = toset(var.gke_cluster_admins)
  project  = var.project_id
  role     = "roles/container.admin"
  member   = each.value
}
