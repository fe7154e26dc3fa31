"""sepm_twin."""
