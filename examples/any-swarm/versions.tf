terraform {
  required_version = ">= 1.5"

  required_providers {
    minibroker = {
      source  = "minibroker/minibroker"
      version = ">= 0.1.0"
    }
  }
}
