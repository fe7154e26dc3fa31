"""The small twin estate several integration tests rotate: two replication partners and, if
asked, a third site whose laptops stay away for days (the swap would cut them off)."""

from __future__ import annotations

from typing import Any


def partner_fleet(
    admin: dict[str, str],
    *,
    clients: tuple[int, int] = (60, 20),
    away_site_clients: int | None = 40,
) -> dict[str, Any]:
    """site-a (14.3, two servers, pull) and site-b (14.2, push) replicate with each other;
    site-c (14.3, a tenth of its clients offline 20 days) unless away_site_clients is None."""
    sites: list[dict[str, Any]] = [
        {
            "name": "site-a", "version": "14.3.9000",
            "servers": [{"name": "sepm-a1"}, {"name": "sepm-a2"}],
            "replication_partners": ["site-b"],
            "groups": [{"name": "My Company\\Default", "clients": clients[0], "mode": "pull",
                        "heartbeat_s": 300}],
        },
        {
            "name": "site-b", "version": "14.2.1000",
            "servers": [{"name": "sepm-b1"}],
            "replication_partners": ["site-a"],
            "groups": [{"name": "My Company\\Servers", "clients": clients[1], "mode": "push"}],
        },
    ]  # fmt: skip
    if away_site_clients is not None:
        sites.append(
            {
                "name": "site-c", "version": "14.3.9000",
                "servers": [{"name": "sepm-c1"}],
                "groups": [{"name": "My Company\\Laptops", "clients": away_site_clients,
                            "mode": "pull", "heartbeat_s": 300,
                            "offline": {"fraction": 0.1, "days": 20}}],
            }
        )  # fmt: skip
    return {"clock": {"speed": 3600}, "admin": admin, "sites": sites}
