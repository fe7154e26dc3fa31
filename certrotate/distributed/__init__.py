"""Distributed mode: the four services as separate OS processes over Kafka and PostgreSQL.

Used by `certrotate up --mode distributed` and by the end-to-end tests. Each service runs as
`python -m <package>` with its own environment (its own PostgreSQL schema, the shared Kafka
topics, the vault, the master key and the internal token), prints `ready <url>` once it serves,
and logs to `<log_dir>/<service>.log`.

API
---
``DistributedConfig(database_url, master_key, internal_token, admin_token, ...)``
    Everything the four processes need. ``DistributedConfig.from_environment(data_dir, ...)``
    reads CERTROTATE_MASTER_KEY / CERTROTATE_INTERNAL_TOKEN /
    CERTROTATE_ORCHESTRATOR_ADMIN_TOKEN (or makes them once and keeps them in
    ``data_dir/secrets.json``, as the embedded stack does) and CERTROTATE_DATABASE_URL /
    CERTROTATE_KAFKA_BOOTSTRAP / CERTROTATE_TOPIC_PREFIX.

``Supervisor(config)`` (also an async context manager: start on enter, stop on exit)
    ``await start(timeout=...)``   workers first, then the orchestrator (it needs their URLs);
                                   raises ``ServiceStartError`` with the service's log tail.
    ``api_url`` / ``url(name)``    the orchestrator's REST API / any service's HTTP base URL.
    ``start_service(name)``        start one service (again), keeping its port.
    ``services[name]``             its ``ServiceProcess``: ``pid``, ``running``, ``ready``,
                                   ``starts`` (ready starts so far), ``log_path``, ``log_tail()``.
    ``environment(name)``          the exact environment a service is started with.
    ``kill(name)``                 SIGKILL, no clean-up (a crash).
    ``await restart(name, kill=True)``  SIGKILL (or SIGTERM) and start again on the same port.
    ``exited()``                   services whose process ended without being asked to.
    ``await stop(grace=10)``       SIGTERM every service (orchestrator first), SIGKILL after
                                   ``grace`` seconds.

``await run_distributed(config, on_ready=None, stop=None, restart_crashed=True)``
    Start everything, call ``on_ready(supervisor)``, then supervise until SIGINT/SIGTERM (or
    ``stop`` is set): a service that exits on its own is restarted (with back-off). Returns an
    exit code (0 after a clean stop). ``run(config, ...)`` is the blocking form.

Defaults: ports 8080 (orchestrator), 8081 (certificates), 8082 (replication), 8083
(client-monitor); schemas ``<schema_prefix>orchestrator`` etc. and ``vault_schema`` ("vault");
``settings={"orchestrator": {"stale_horizon_days": 30}}`` sets any other service setting.
Ports: 0 picks a free port on the first start; a restart reuses the port the service got, so
the orchestrator's CERTIFICATES_URL / CLIENT_MONITOR_URL and a client's API URL stay valid.
"""

from certrotate.distributed.config import (
    DEFAULT_PORTS,
    PACKAGES,
    SERVICES,
    WORKERS,
    DistributedConfig,
)
from certrotate.distributed.process import ServiceProcess, ServiceStartError, die_with_parent
from certrotate.distributed.supervisor import Supervisor, run, run_distributed

__all__ = [
    "DEFAULT_PORTS",
    "PACKAGES",
    "SERVICES",
    "WORKERS",
    "DistributedConfig",
    "ServiceProcess",
    "ServiceStartError",
    "Supervisor",
    "die_with_parent",
    "run",
    "run_distributed",
]
