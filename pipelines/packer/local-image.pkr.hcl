// The example pipeline's bake, offline: Packer's `file` builder stands in for a cloud image.
// It writes an image descriptor for the revision zip, after a shell-local provisioner checked
// that the zip is whole. Its artifact id (`File`) and the descriptor flow into the params
// file through steps.bake.outputs. pipelines/aws-ami.yml bakes a real AMI instead.

variable "app_zip" {
  type        = string
  description = "The revision zip (the package step's output)."
}

variable "app_sha256" {
  type    = string
  default = ""
}

variable "build_id" {
  type    = string
  default = "local"
}

variable "image" {
  type        = string
  default     = "image.txt"
  description = "Where to write the image descriptor; its directory must exist."
}

source "file" "image" {
  target  = var.image
  content = "image ${var.build_id}\nrevision ${var.app_zip}\nsha256 ${var.app_sha256}\n"
}

build {
  sources = ["source.file.image"]

  provisioner "shell-local" {
    inline = [
      "test -s '${var.app_zip}' || { echo 'missing revision ${var.app_zip}' >&2; exit 1; }",
      "echo \"baking ${var.build_id} from ${var.app_zip} ($(wc -c < '${var.app_zip}') bytes)\"",
    ]
  }
}
