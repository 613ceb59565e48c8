// The orders service baked into an Amazon Machine Image: a Debian 12 instance gets the
// revision zip made by the `package` step, installs it under /opt/orders and checks that it
// runs. The AMI is made in `region` and copied to `copy_region`; Packer prints its id as
// `us-east-1:ami-...,eu-west-1:ami-...`, which the runner's packer step turns into the outputs
// ami_id, ami_us_east_1 and ami_eu_west_1.
//
// The runner resolves the source AMI (the step's `source_ami`: the newest Debian 12 image) and
// passes it as `source_ami`, so that it is part of the bake's key. Nothing that changes from
// build to build is a variable (the AMI's name takes the time instead): an unchanged revision
// on the same source AMI is the same bake, and the runner reuses its AMIs (README, "Baking
// AMIs, and skipping a bake"); the runner tags them with the build that made them.
//
// Check it without AWS:
//   packer validate -var app_zip=dist/orders.zip -var source_ami=ami-0123456789abcdef0 aws-ami.pkr.hcl

variable "app_zip" {
  type        = string
  description = "The revision zip to install (the package step's output)."
}

variable "source_ami" {
  type        = string
  description = "The AMI to start from (the runner resolves the packer step's source_ami)."
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "copy_region" {
  type    = string
  default = "eu-west-1"
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
  ami_name      = "orders-${formatdate("YYYYMMDD-hhmmss", timestamp())}"
  source_ami    = var.source_ami

  tags = {
    Name      = "orders"
    Service   = "orders"
    SourceAmi = var.source_ami
  }
  run_tags = {
    Name = "packer-orders"
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
}
