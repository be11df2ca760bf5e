# --- RDS PostgreSQL: the shop's system of record, with logical replication for Debezium ----
resource "aws_db_parameter_group" "postgres" {
  name   = "${local.name}-postgres${var.postgres_version}"
  family = "postgres${var.postgres_version}"

  # wal_level=logical: what Debezium's pgoutput plugin needs (docs/deployment.md).
  parameter {
    name         = "rds.logical_replication"
    value        = "1"
    apply_method = "pending-reboot"
  }
  parameter {
    name         = "max_replication_slots"
    value        = "10"
    apply_method = "pending-reboot"
  }
  parameter {
    name         = "max_wal_senders"
    value        = "10"
    apply_method = "pending-reboot"
  }
  # A slot whose reader is gone must not fill the disk with WAL.
  parameter {
    name  = "max_slot_wal_keep_size"
    value = "20480"
  }
  # Clients must use TLS (the secret's URL carries sslmode=require).
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
  parameter {
    name  = "log_statement"
    value = "ddl"
  }
}

resource "random_password" "postgres" {
  length  = 32
  special = false
}

resource "aws_db_instance" "postgres" {
  identifier     = "${local.name}-shop"
  engine         = "postgres"
  engine_version = var.postgres_version
  instance_class = var.rds_instance_class
  db_name        = "shop"
  username       = "churnwire"
  password       = random_password.postgres.result

  allocated_storage     = var.rds_allocated_storage_gb
  max_allocated_storage = var.rds_allocated_storage_gb * 4
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.data.arn

  multi_az               = var.rds_multi_az
  db_subnet_group_name   = module.vpc.database_subnet_group_name
  vpc_security_group_ids = [aws_security_group.data_stores.id]
  parameter_group_name   = aws_db_parameter_group.postgres.name
  publicly_accessible    = false

  iam_database_authentication_enabled = true
  backup_retention_period             = 7
  copy_tags_to_snapshot               = true
  deletion_protection                 = var.deletion_protection
  skip_final_snapshot                 = !var.deletion_protection
  final_snapshot_identifier           = "${local.name}-shop-final"
  auto_minor_version_upgrade          = true
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = aws_kms_key.data.arn
  monitoring_interval                 = 60
  monitoring_role_arn                 = aws_iam_role.rds_monitoring.arn
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
}

# --- MSK: Kafka with SASL/SCRAM over TLS ------------------------------------------------------
resource "aws_msk_configuration" "kafka" {
  name           = "${local.name}-kafka"
  kafka_versions = [var.kafka_version]
  # churnwire creates its topics (`churnwire setup`) with the partition count it is told.
  server_properties = <<-PROPERTIES
    auto.create.topics.enable=false
    default.replication.factor=3
    min.insync.replicas=2
    unclean.leader.election.enable=false
  PROPERTIES
}

resource "aws_cloudwatch_log_group" "msk" {
  name              = "/churnwire/${var.environment}/msk"
  retention_in_days = 365
  kms_key_id        = aws_kms_key.data.arn
}

resource "aws_msk_cluster" "kafka" {
  cluster_name           = local.name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = var.msk_broker_count

  broker_node_group_info {
    instance_type   = var.msk_instance_type
    client_subnets  = module.vpc.private_subnets
    security_groups = [aws_security_group.data_stores.id]
    storage_info {
      ebs_storage_info {
        volume_size = var.msk_volume_gb
      }
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.kafka.arn
    revision = aws_msk_configuration.kafka.latest_revision
  }

  client_authentication {
    sasl {
      scram = true
    }
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = aws_kms_key.data.arn
    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = true
    }
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.msk.name
      }
    }
  }
}

# --- ElastiCache Redis: the feature state ----------------------------------------------------
resource "random_password" "redis" {
  length  = 48
  special = false
}

resource "aws_elasticache_subnet_group" "redis" {
  name       = "${local.name}-redis"
  subnet_ids = module.vpc.private_subnets
}

resource "aws_elasticache_replication_group" "redis" {
  # checkov:skip=CKV2_AWS_50:Failover follows redis_replicas: on with replicas (prod.tfvars), off for a single-node dev cache.
  replication_group_id = "${local.name}-features"
  description          = "churnwire feature state (${var.environment})"
  engine               = "redis"
  engine_version       = "7.1"
  node_type            = var.redis_node_type
  port                 = 6379

  # Cluster mode disabled: the scoring scripts touch global keys (docs/scoring.md).
  num_cache_clusters         = 1 + var.redis_replicas
  automatic_failover_enabled = var.redis_replicas > 0
  multi_az_enabled           = var.redis_replicas > 0

  subnet_group_name  = aws_elasticache_subnet_group.redis.name
  security_group_ids = [aws_security_group.data_stores.id]

  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.data.arn
  transit_encryption_enabled = true
  auth_token                 = random_password.redis.result

  # Features are rebuilt from Kafka and PostgreSQL, but a snapshot makes recovery minutes.
  snapshot_retention_limit   = 3
  auto_minor_version_upgrade = true
}

# --- S3: the model registry ----------------------------------------------------------------
resource "aws_s3_bucket" "models" {
  # checkov:skip=CKV_AWS_144:Models are rebuilt by training from PostgreSQL; cross-region replication is not worth its cost.
  # checkov:skip=CKV2_AWS_62:Nothing reacts to new model files; workers poll the registry.
  # checkov:skip=CKV_AWS_18:Access logging needs a separate log bucket; CloudTrail data events cover audits.
  bucket = "${local.name}-models-${local.account_id}"
}

resource "aws_s3_bucket_versioning" "models" {
  bucket = aws_s3_bucket.models.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "models" {
  bucket = aws_s3_bucket.models.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.data.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_public_access_block" "models" {
  bucket                  = aws_s3_bucket.models.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_lifecycle_configuration" "models" {
  bucket = aws_s3_bucket.models.id
  rule {
    id     = "old-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = 90
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}
