module "eks" {
  # checkov:skip=CKV_TF_1:Registry modules are pinned by exact version; commit hashes apply to git sources.
  source  = "terraform-aws-modules/eks/aws"
  version = "20.24.3"

  cluster_name    = local.name
  cluster_version = var.kubernetes_version

  vpc_id     = module.vpc.vpc_id
  subnet_ids = module.vpc.private_subnets

  cluster_endpoint_private_access      = true
  cluster_endpoint_public_access       = length(var.cluster_endpoint_public_cidrs) > 0
  cluster_endpoint_public_access_cidrs = var.cluster_endpoint_public_cidrs

  enable_cluster_creator_admin_permissions = true
  enable_irsa                              = true
  cluster_enabled_log_types                = ["api", "audit", "authenticator"]
  cluster_encryption_config                = { resources = ["secrets"], provider_key_arn = aws_kms_key.data.arn }
  create_kms_key                           = false

  cluster_addons = {
    coredns                = {}
    kube-proxy             = {}
    vpc-cni                = { before_compute = true }
    eks-pod-identity-agent = {}
    aws-ebs-csi-driver     = { service_account_role_arn = aws_iam_role.ebs_csi.arn }
  }

  eks_managed_node_groups = {
    app = {
      instance_types = var.node_instance_types
      min_size       = var.node_count.min
      max_size       = var.node_count.max
      desired_size   = var.node_count.desired
      labels         = { "churnwire.io/pool" = "app" }
      metadata_options = {
        http_endpoint               = "enabled"
        http_tokens                 = "required"
        http_put_response_hop_limit = 1
      }
    }
  }
}
