greeting = "from the var file"
