"""Deployment: the provider contract, deployments and their records, and the built-in local
provider (a serving process on this machine)."""
