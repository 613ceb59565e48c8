variable "greeting" {
  type    = string
  default = "hello"
}

variable "target" {
  type    = string
  default = "hcl-image.txt"
}

source "null" "vm" {
  communicator = "none"
}

source "file" "image" {
  target  = var.target
  content = "${var.greeting}\n"
}

build {
  sources = ["source.null.vm", "source.file.image"]

  provisioner "shell-local" {
    inline = ["echo \"${source.name} says ${var.greeting}\""]
  }
}
