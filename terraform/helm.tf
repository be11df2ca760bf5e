# External Secrets operator: turns the Secrets Manager entry into the pods' Secret.
resource "helm_release" "external_secrets" {
  count            = var.deploy_chart ? 1 : 0
  name             = "external-secrets"
  repository       = "https://charts.external-secrets.io"
  chart            = "external-secrets"
  version          = "0.10.4"
  namespace        = "external-secrets"
  create_namespace = true
  depends_on       = [module.eks]
}

resource "helm_release" "churnwire" {
  count            = var.deploy_chart ? 1 : 0
  name             = "churnwire"
  chart            = "${path.module}/../charts/churnwire"
  namespace        = local.namespace
  create_namespace = true
  values           = [file("${path.module}/${var.chart_values_file}")]
  timeout          = 900

  set {
    name  = "image.repository"
    value = var.image_repository
  }
  set {
    name  = "image.tag"
    value = var.image_tag
  }
  set {
    name  = "fullnameOverride"
    value = local.service_account
  }
  set {
    name  = "serviceAccount.roleArn"
    value = aws_iam_role.churnwire.arn
  }
  set {
    name  = "models.s3Uri"
    value = "s3://${aws_s3_bucket.models.bucket}/registry"
  }
  set {
    name  = "secrets.externalSecret.remoteKey"
    value = aws_secretsmanager_secret.env.name
  }
  set {
    name  = "secrets.externalSecret.region"
    value = var.region
  }

  depends_on = [
    helm_release.external_secrets,
    aws_secretsmanager_secret_version.env,
    aws_msk_scram_secret_association.kafka,
  ]
}
