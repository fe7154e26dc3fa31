"""Every message of certrotate; importing this package registers them all."""

from certrotate_shared.messages import certificates, client_monitor, replication

__all__ = ["certificates", "client_monitor", "replication"]
