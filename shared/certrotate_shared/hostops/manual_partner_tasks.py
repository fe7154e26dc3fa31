"""The operator tasks for replication partnerships, on both sites of a pair (they are
configured per site). Which side re-adds first, and why, is explained in
services/replication/replication/domain/partners.py."""

from __future__ import annotations

from certrotate_shared.hostops.base import OperatorTask
from certrotate_shared.hostops.manual_tasks import task_id_for
from certrotate_shared.messages.common import ServerTarget, SiteTarget


def _host(server: ServerTarget) -> str:
    return server.hostnames[0] if server.hostnames else server.address


def _console(site: SiteTarget) -> str:
    return f"the SEPM console of site {site.site} ({_host(site.servers[0])})"


def delete_partner_task(
    site: SiteTarget, partner: str, key: str, *, on_partner_side: bool = False
) -> OperatorTask:
    here, there = (partner, site.site) if on_partner_side else (site.site, partner)
    where = f"the SEPM console of site {partner}" if on_partner_side else _console(site)
    lines = [
        f"Break replication between site {site.site} and site {partner} before the "
        "certificate changes (partners talk HTTPS to each other). A partnership is configured "
        "on each site of the pair; this task is site "
        f"{here}'s side" + ("." if on_partner_side else f"; site {partner}'s side follows."),
        f"1. Log on to {where} as a system administrator.",
        f"2. Admin > Servers > Replication Partners > right-click {there} > "
        "Delete Replication Partner > Yes. If it is no longer listed, change nothing.",
        "3. Do not delete anything else. Confirm this task.",
    ]
    verification = (
        f"certrotate cannot read site {partner}'s replication status: your confirmation is the "
        f"check that {site.site} is no longer listed there."
        if on_partner_side
        else f"certrotate reads GET /replication/status of site {site.site}: {partner} must no "
        "longer be listed as a replication partner."
    )
    return OperatorTask(
        task_id=task_id_for(key),
        title=f"Delete replication partner {there} of site {here}",
        instructions="\n".join(lines),
        verification=verification,
        server=site.servers[0].name,
    )


def add_partner_task(
    site: SiteTarget, partner: str, key: str, *, on_partner_side: bool = False
) -> OperatorTask:
    if on_partner_side:
        return _add_on_partner_side(site, partner, key)
    lines = [
        f"Restore the replication between site {site.site} and site {partner} that certrotate "
        "broke at the start of the rotation. Site "
        f"{site.site} re-adds first; site {partner}'s side follows once replication succeeded.",
        f"1. Log on to {_console(site)} as a system administrator.",
        "2. Admin > Servers > right-click Local Site > Add Existing Replication Partner; "
        f"enter a management server of site {partner}, port 8443, and a system "
        f"administrator account of {partner}.",
        f"3. Warning: re-adding overwrites site {partner}'s database with site {site.site}'s: "
        f"changes made on {partner} during the rotation are lost. Replicate only what was "
        "replicated before; certrotate will then trigger replication of groups and policies "
        "(content=false, logs=false).",
        "4. Confirm this task.",
    ]
    return OperatorTask(
        task_id=task_id_for(key),
        title=f"Re-add replication partner {partner} to site {site.site}",
        instructions="\n".join(lines),
        verification=(
            f"certrotate reads GET /replication/status of site {site.site}: {partner} must be "
            "listed; it then runs replicatenow and waits for status SUCCEEDED."
        ),
        server=site.servers[0].name,
    )


def _add_on_partner_side(site: SiteTarget, partner: str, key: str) -> OperatorTask:
    lines = [
        f"Finish restoring the replication between site {site.site} and site {partner}: site "
        f"{partner}'s side. Do it only now, after site {site.site} re-added {partner} and "
        f"certrotate saw that replication reach SUCCEEDED: site {partner}'s database then "
        f"holds site {site.site}'s, so re-adding from {partner} overwrites nothing that matters.",
        f"1. Log on to the SEPM console of site {partner} as a system administrator.",
        f"2. Admin > Servers: if Replication Partners already lists {site.site}, change "
        "nothing and confirm this task.",
        "3. Otherwise right-click Local Site > Add Existing Replication Partner; enter a "
        f"management server of site {site.site}, port 8443, and a system administrator "
        f"account of {site.site}, with the same replication choices as before.",
        "4. Confirm this task.",
    ]
    return OperatorTask(
        task_id=task_id_for(key),
        title=f"Re-add replication partner {site.site} to site {partner}",
        instructions="\n".join(lines),
        verification=(
            f"certrotate cannot read site {partner}'s replication status: your confirmation is "
            f"the check that {site.site} is listed there again."
        ),
        server=site.servers[0].name,
    )
