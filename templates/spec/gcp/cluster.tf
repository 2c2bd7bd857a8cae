# GKE (VPC-native, workload identity) with one autoscaled node pool sized from the Spec,
# and container.admin for the Spec's cluster admins.

resource "google_container_cluster" "this" {
  name                     = "${local.name}-gke"
  location                 = var.region
  min_master_version       = var.gke_cluster_version
  network                  = local.network_id
  subnetwork               = var.provision_network ? google_compute_subnetwork.this[0].id : null
  networking_mode          = "VPC_NATIVE"
  remove_default_node_pool = true
  initial_node_count       = 1
  deletion_protection      = false
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

  workload_identity_config {
    workload_pool = "${var.project_id}.svc.id.goog"
  }
}

resource "google_service_account" "nodes" {
  account_id   = substr("${local.name}-gke-nodes", 0, 30)
  display_name = "GKE nodes of ${local.name}"
}

resource "google_container_node_pool" "default" {
  name               = "default"
  cluster            = google_container_cluster.this.id
  location           = var.region
  initial_node_count = var.gke_node_desired_size

  autoscaling {
    min_node_count = var.gke_node_min_size
    max_node_count = var.gke_node_max_size
  }

  node_config {
    machine_type    = var.gke_instance_types[0]
    disk_size_gb    = var.gke_disk_size_gb
    spot            = var.gke_spot
    service_account = google_service_account.nodes.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]
    labels          = var.labels

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
  }

  # The autoscaler owns the node count once the pool exists.
  lifecycle {
    ignore_changes = [initial_node_count]
  }
}

resource "google_project_iam_member" "cluster_admin" {
  for_each = toset(var.gke_cluster_admins)
  project  = var.project_id
  role     = "roles/container.admin"
  member   = each.value
}
