"""certrotate."""
