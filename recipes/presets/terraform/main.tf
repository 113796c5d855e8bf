# Reads the nodes.json piimage writes next to the images (docs/nodes-json.md) into locals that
# the rest of a configuration can use: copy this file into your configuration and point
# `nodes_json` at the output directory's nodes.json.
#   terraform init && terraform console
#   > local.addresses["worker-01"]

variable "nodes_json" {
  description = "Path of the nodes.json piimage wrote"
  type        = string
  default     = "../../../out/terraform/nodes.json"
}

locals {
  cluster = jsondecode(file(var.nodes_json))

  # Node name => the node's object as nodes.json has it.
  nodes = { for n in local.cluster.nodes : n.name => n }

  # Role => the names of its nodes, in name order.
  roles = { for n in local.cluster.nodes : n.role => n.name... }

  # Node name => the address to reach it at (null for a DHCP node without one).
  addresses = { for n in local.cluster.nodes : n.name => try(n.addresses[0], null) }

  # Node name => its SSH host key, for a known_hosts file or a connection block.
  host_keys = { for n in local.cluster.nodes : n.name => n.ssh.host_key if n.ssh.host_key != null }

  # Worker addresses, e.g. for a load balancer's targets.
  worker_addresses = [for n in local.cluster.nodes : n.addresses[0] if n.role == "worker" && length(n.addresses) > 0]
}

output "cluster" {
  value = local.cluster.cluster
}

output "roles" {
  value = local.roles
}

output "worker_addresses" {
  value = local.worker_addresses
}
