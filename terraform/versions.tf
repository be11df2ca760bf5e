terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.70"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "~> 2.15"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # State holds generated passwords: keep it in an encrypted, versioned S3 bucket, e.g.
  # terraform init -backend-config="bucket=..." -backend-config="key=churnwire/prod.tfstate"
  #   -backend-config="region=us-east-1" -backend-config="encrypt=true"
  backend "s3" {}
}
