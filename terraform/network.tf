module "vpc" {
  # checkov:skip=CKV_TF_1:Registry modules are pinned by exact version; commit hashes apply to git sources.
  source  = "terraform-aws-modules/vpc/aws"
  version = "5.13.0"

  name = local.name
  cidr = var.vpc_cidr
  azs  = local.azs

  private_subnets  = [for index in range(3) : cidrsubnet(var.vpc_cidr, 4, index)]
  public_subnets   = [for index in range(3) : cidrsubnet(var.vpc_cidr, 8, 48 + index)]
  database_subnets = [for index in range(3) : cidrsubnet(var.vpc_cidr, 8, 52 + index)]

  enable_nat_gateway     = true
  single_nat_gateway     = var.single_nat_gateway
  one_nat_gateway_per_az = !var.single_nat_gateway
  enable_dns_hostnames   = true

  create_database_subnet_group = true

  enable_flow_log                      = true
  create_flow_log_cloudwatch_log_group = true
  create_flow_log_cloudwatch_iam_role  = true

  # The AWS load balancer controller finds subnets by these tags.
  public_subnet_tags  = { "kubernetes.io/role/elb" = "1" }
  private_subnet_tags = { "kubernetes.io/role/internal-elb" = "1" }
}

# One key for every store churnwire's data rests in (RDS, MSK, ElastiCache, S3, secrets).
resource "aws_kms_key" "data" {
  description             = "${local.name} data at rest"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

data "aws_iam_policy_document" "kms" {
  # checkov:skip=CKV_AWS_109:The account root statement is the key's administrator; IAM policies narrow it.
  # checkov:skip=CKV_AWS_111:Same statement; a key policy without it can lock the key out of the account.
  # checkov:skip=CKV_AWS_356:Resource "*" in a key policy means this key only.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${local.account_id}:root"]
    }
  }
}

resource "aws_kms_alias" "data" {
  name          = "alias/${local.name}-data"
  target_key_id = aws_kms_key.data.key_id
}

# Reached only from the EKS nodes.
resource "aws_security_group" "data_stores" {
  name        = "${local.name}-data-stores"
  description = "PostgreSQL, Kafka and Redis, reachable from the EKS nodes only"
  vpc_id      = module.vpc.vpc_id

  ingress {
    description     = "PostgreSQL from EKS nodes"
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = [module.eks.node_security_group_id]
  }
  ingress {
    description     = "Kafka SASL/SCRAM over TLS from EKS nodes"
    from_port       = 9096
    to_port         = 9096
    protocol        = "tcp"
    security_groups = [module.eks.node_security_group_id]
  }
  ingress {
    description     = "Redis over TLS from EKS nodes"
    from_port       = 6379
    to_port         = 6379
    protocol        = "tcp"
    security_groups = [module.eks.node_security_group_id]
  }
  egress {
    description = "Replies within the VPC"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = [var.vpc_cidr]
  }
}
