"""certrotate_shared."""
