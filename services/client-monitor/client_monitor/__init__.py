"""client_monitor."""
