# Kafka SCRAM credentials: MSK only accepts secrets named AmazonMSK_* under a customer key.
resource "random_password" "kafka" {
  length  = 32
  special = false
}

resource "aws_secretsmanager_secret" "msk_scram" {
  # checkov:skip=CKV2_AWS_57:MSK SCRAM secrets cannot rotate automatically; rotate by writing a new version.
  name       = "AmazonMSK_${local.name}_churnwire"
  kms_key_id = aws_kms_key.data.arn
}

resource "aws_secretsmanager_secret_version" "msk_scram" {
  secret_id     = aws_secretsmanager_secret.msk_scram.id
  secret_string = jsonencode({ username = "churnwire", password = random_password.kafka.result })
}

resource "aws_msk_scram_secret_association" "kafka" {
  cluster_arn     = aws_msk_cluster.kafka.arn
  secret_arn_list = [aws_secretsmanager_secret.msk_scram.arn]
  depends_on      = [aws_secretsmanager_secret_version.msk_scram]
}

# Every CHURNWIRE_* credential the pods need, as one JSON object; the chart's ExternalSecret
# copies it into a Kubernetes Secret (docs/deployment.md).
resource "aws_secretsmanager_secret" "env" {
  # checkov:skip=CKV2_AWS_57:The values are generated together with the resources; rotation is a terraform apply (docs/deployment.md).
  name       = "churnwire/${var.environment}/env"
  kms_key_id = aws_kms_key.data.arn
}

resource "aws_secretsmanager_secret_version" "env" {
  secret_id = aws_secretsmanager_secret.env.id
  secret_string = jsonencode({
    CHURNWIRE_POSTGRES_URL        = "postgresql://churnwire:${random_password.postgres.result}@${aws_db_instance.postgres.address}:5432/shop?sslmode=require"
    CHURNWIRE_REDIS_URL           = "rediss://:${random_password.redis.result}@${aws_elasticache_replication_group.redis.primary_endpoint_address}:6379/0"
    CHURNWIRE_KAFKA_BOOTSTRAP     = aws_msk_cluster.kafka.bootstrap_brokers_sasl_scram
    CHURNWIRE_KAFKA_SASL_USERNAME = "churnwire"
    CHURNWIRE_KAFKA_SASL_PASSWORD = random_password.kafka.result
  })
}
