output "cluster_name" {
  description = "EKS cluster name (aws eks update-kubeconfig --name ...)."
  value       = module.eks.cluster_name
}

output "churnwire_role_arn" {
  description = "IAM role of the churnwire service account (chart value serviceAccount.roleArn)."
  value       = aws_iam_role.churnwire.arn
}

output "models_bucket" {
  description = "S3 bucket of the model registry; upload to s3://<bucket>/registry."
  value       = aws_s3_bucket.models.bucket
}

output "env_secret_name" {
  description = "Secrets Manager entry with the CHURNWIRE_* credentials (chart value secrets.externalSecret.remoteKey)."
  value       = aws_secretsmanager_secret.env.name
}

output "postgres_address" {
  description = "RDS PostgreSQL host name."
  value       = aws_db_instance.postgres.address
}

output "kafka_bootstrap_brokers" {
  description = "MSK bootstrap brokers for SASL/SCRAM over TLS."
  value       = aws_msk_cluster.kafka.bootstrap_brokers_sasl_scram
}

output "redis_primary_endpoint" {
  description = "ElastiCache primary endpoint."
  value       = aws_elasticache_replication_group.redis.primary_endpoint_address
}
