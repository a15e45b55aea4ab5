"""Recording what was deployed where: nixus's state database."""
