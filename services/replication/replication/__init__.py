"""The replication service: inspect, break and restore a site's replication partnerships."""
