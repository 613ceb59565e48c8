// The orders service baked into an Amazon Machine Image: a Debian 12 instance gets the
// revision zip made by the `package` step, installs it under /opt/orders and checks that it
// runs. The AMI is made in `region` and copied to `copy_region`; Packer prints its id as
// `us-east-1:ami-...,eu-west-1:ami-...`, which the runner's packer step turns into the outputs
// ami_id, ami_us_east_1 and ami_eu_west_1.
//
// Check it without AWS: packer validate -var app_zip=dist/orders.zip aws-ami.pkr.hcl

variable "app_zip" {
  type        = string
  description = "The revision zip to install (the package step's output)."
}

variable "build_id" {
  type        = string
  default     = "local"
  description = "The runner's build id, for the AMI's name and tags."
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "copy_region" {
  type    = string
  default = "eu-west-1"
}

variable "manifest" {
  type        = string
  default     = "packer-manifest.json"
  description = "Where Packer's manifest post-processor records the build."
}

variable "instance_type" {
  type    = string
  default = "t3.micro"
}

source "amazon-ebs" "orders" {
  region        = var.region
  ami_regions   = [var.copy_region]
  instance_type = var.instance_type
  ssh_username  = "admin"
  ami_name      = "orders-${var.build_id}"

  source_ami_filter {
    filters = {
      name                = "debian-12-amd64-*"
      architecture        = "x86_64"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = ["136693071363"] // Debian
    most_recent = true
  }

  tags = {
    Name    = "orders-${var.build_id}"
    BuildId = var.build_id
    Service = "orders"
  }
  run_tags = {
    Name = "packer-orders-${var.build_id}"
  }
}

build {
  sources = ["source.amazon-ebs.orders"]

  provisioner "file" {
    source      = var.app_zip
    destination = "/tmp/orders.zip"
  }

  provisioner "shell" {
    inline = [
      "set -eu",
      "sudo apt-get update -qq",
      "sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq unzip",
      "sudo mkdir -p /opt/orders",
      "sudo unzip -o /tmp/orders.zip -d /opt/orders",
      "sudo ln -sf /opt/orders/bin/orders /usr/local/bin/orders",
      "rm -f /tmp/orders.zip",
      "orders --self-test",
      "orders --version",
    ]
  }

  post-processor "manifest" {
    output     = var.manifest
    strip_path = true
  }
}
