provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

# The Helm provider talks to the cluster this configuration creates.
provider "helm" {
  kubernetes {
    host                   = module.eks.cluster_endpoint
    cluster_ca_certificate = base64decode(module.eks.cluster_certificate_authority_data)
    exec {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", module.eks.cluster_name, "--region", var.region]
    }
  }
}

data "aws_caller_identity" "current" {}
data "aws_availability_zones" "available" {
  # checkov:skip=CKV_AWS_394:Names come back sorted and only the first three are used; a new zone sorts after them.
  state = "available"
}

locals {
  name       = "churnwire-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  azs        = slice(data.aws_availability_zones.available.names, 0, 3)
  tags = merge(var.tags, {
    Project     = "churnwire"
    Environment = var.environment
    ManagedBy   = "terraform"
  })
}
