variable "environment" {
  description = "Environment name, used in every resource name (for example dev or prod)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.environment))
    error_message = "environment must be 2-16 lower-case letters, digits or dashes, starting with a letter."
  }
}

variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "us-east-1"
  validation {
    condition     = can(regex("^[a-z]{2}-[a-z]+-[0-9]$", var.region))
    error_message = "region must look like us-east-1."
  }
}

variable "tags" {
  description = "Extra tags applied to every resource."
  type        = map(string)
  default     = {}
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC; three private, three public and three database subnets are carved from it."
  type        = string
  default     = "10.40.0.0/16"
  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && tonumber(split("/", var.vpc_cidr)[1]) <= 18
    error_message = "vpc_cidr must be a valid IPv4 CIDR of /18 or larger."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheaper, fine for dev) instead of one per zone."
  type        = bool
  default     = false
}

variable "kubernetes_version" {
  description = "EKS control plane version."
  type        = string
  default     = "1.30"
  validation {
    condition     = can(regex("^1\\.(2[89]|3[0-9])$", var.kubernetes_version))
    error_message = "kubernetes_version must be 1.28 or newer, as major.minor."
  }
}

variable "cluster_endpoint_public_cidrs" {
  description = "CIDRs allowed to reach the EKS API endpoint publicly; empty keeps the endpoint private."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for cidr in var.cluster_endpoint_public_cidrs : can(cidrnetmask(cidr))])
    error_message = "Every entry must be an IPv4 CIDR."
  }
}

variable "node_instance_types" {
  description = "Instance types of the managed node group running churnwire."
  type        = list(string)
  default     = ["m6i.large"]
  validation {
    condition     = length(var.node_instance_types) > 0
    error_message = "At least one instance type is required."
  }
}

variable "node_count" {
  description = "Desired, minimum and maximum node count of the managed node group."
  type = object({
    desired = number
    min     = number
    max     = number
  })
  default = { desired = 3, min = 2, max = 6 }
  validation {
    condition     = var.node_count.min <= var.node_count.desired && var.node_count.desired <= var.node_count.max && var.node_count.min >= 1
    error_message = "node_count must satisfy 1 <= min <= desired <= max."
  }
}

variable "msk_instance_type" {
  description = "MSK broker instance type."
  type        = string
  default     = "kafka.m7g.large"
  validation {
    condition     = can(regex("^kafka\\.", var.msk_instance_type))
    error_message = "msk_instance_type must be an MSK broker type such as kafka.m7g.large."
  }
}

variable "msk_broker_count" {
  description = "Number of MSK brokers; a multiple of the three availability zones."
  type        = number
  default     = 3
  validation {
    condition     = var.msk_broker_count >= 3 && var.msk_broker_count % 3 == 0
    error_message = "msk_broker_count must be a multiple of 3 (one per zone)."
  }
}

variable "msk_volume_gb" {
  description = "EBS storage per MSK broker in GiB."
  type        = number
  default     = 100
  validation {
    condition     = var.msk_volume_gb >= 10 && var.msk_volume_gb <= 16384
    error_message = "msk_volume_gb must be between 10 and 16384."
  }
}

variable "kafka_version" {
  description = "Apache Kafka version of the MSK cluster."
  type        = string
  default     = "3.6.0"
}

variable "redis_node_type" {
  description = "ElastiCache node type of the feature store."
  type        = string
  default     = "cache.r7g.large"
  validation {
    condition     = can(regex("^cache\\.", var.redis_node_type))
    error_message = "redis_node_type must be an ElastiCache node type such as cache.r7g.large."
  }
}

variable "redis_replicas" {
  description = "Read replicas per Redis primary (0 for dev; 1 or more gives automatic failover)."
  type        = number
  default     = 1
  validation {
    condition     = var.redis_replicas >= 0 && var.redis_replicas <= 5
    error_message = "redis_replicas must be between 0 and 5."
  }
}

variable "rds_instance_class" {
  description = "RDS PostgreSQL instance class of the shop database."
  type        = string
  default     = "db.m6g.large"
  validation {
    condition     = can(regex("^db\\.", var.rds_instance_class))
    error_message = "rds_instance_class must be an RDS class such as db.m6g.large."
  }
}

variable "rds_allocated_storage_gb" {
  description = "RDS storage in GiB (gp3)."
  type        = number
  default     = 100
  validation {
    condition     = var.rds_allocated_storage_gb >= 20
    error_message = "rds_allocated_storage_gb must be at least 20."
  }
}

variable "rds_multi_az" {
  description = "Run RDS with a standby in a second zone."
  type        = bool
  default     = true
}

variable "postgres_version" {
  description = "PostgreSQL major version; the parameter group family follows it."
  type        = string
  default     = "16"
  validation {
    condition     = contains(["15", "16"], var.postgres_version)
    error_message = "postgres_version must be 15 or 16."
  }
}

variable "deletion_protection" {
  description = "Protect RDS from deletion and keep a final snapshot; turn off only for throwaway dev stacks."
  type        = bool
  default     = true
}

variable "chart_values_file" {
  description = "Values file for the churnwire Helm release, relative to this folder."
  type        = string
  default     = "../charts/churnwire/values-production.yaml"
}

variable "image_repository" {
  description = "Container image repository of churnwire (ECR)."
  type        = string
}

variable "image_tag" {
  description = "Container image tag of churnwire."
  type        = string
  validation {
    condition     = length(var.image_tag) > 0 && var.image_tag != "latest"
    error_message = "image_tag must be a fixed version, not empty or latest."
  }
}

variable "deploy_chart" {
  description = "Install the churnwire Helm release (false: infrastructure only)."
  type        = bool
  default     = true
}
