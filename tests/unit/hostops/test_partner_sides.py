"""Replication partnerships are configured per site (issue 10): breaking one deletes it on
both sites of the pair, restoring re-adds it on both. Each driver can act on the partner's
side of the pair (`on_partner_side=True`): the twin on the partner's site, a person at the
partner's console; WinRM, holding only this site's servers and account, hands that side to a
person."""

from __future__ import annotations

from typing import Any, cast

import httpx
import pytest

from certrotate_shared.hostops import HostOperationError, ManualTaskPending, host_operations_for
from certrotate_shared.hostops.manual import ManualHostOperations
from certrotate_shared.hostops.twin import TwinHostOperations
from certrotate_shared.hostops.winrm import WinRMHostOperations
from certrotate_shared.messages.common import HostOpsTarget, ServerTarget, SiteTarget
from certrotate_shared.vault import Vault

pytestmark = pytest.mark.unit


def site(driver: str = "manual") -> SiteTarget:
    return SiteTarget(
        site="site-a",
        version="14.3.9000",
        api_url="https://sepm-a1:8446/sepm/api/v1",
        credential_ref="sepm/site-a",
        servers=[ServerTarget(name="sepm-a1", address="10.0.0.1", version="14.3.9000")],
        host_ops=HostOpsTarget(
            driver=driver,
            endpoint="http://twin:1" if driver == "twin" else None,
            credential_ref="winrm/site-a",
        ),
    )


def twin(answer: Any) -> TwinHostOperations:
    return TwinHostOperations("http://twin:1", transport=httpx.MockTransport(answer))


async def test_the_twin_driver_acts_on_the_partners_site_for_its_side() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json={})

    ops = twin(answer)
    await ops.delete_replication_partner(site("twin"), "site-b", key="k1")
    await ops.delete_replication_partner(site("twin"), "site-b", key="k2", on_partner_side=True)
    await ops.add_replication_partner(site("twin"), "site-b", key="k3")
    await ops.add_replication_partner(site("twin"), "site-b", key="k4", on_partner_side=True)
    await ops.close()
    assert seen == [
        "/twin/v1/sites/site-a/replication/partners/site-b/delete",
        "/twin/v1/sites/site-b/replication/partners/site-a/delete",
        "/twin/v1/sites/site-a/replication/partners/site-b/add",
        "/twin/v1/sites/site-b/replication/partners/site-a/add",
    ]


async def test_the_partners_side_already_in_the_wanted_state_is_done() -> None:
    """A SEPM (or twin) that removes or re-adds both sides at once leaves nothing to do."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/delete"):
            return httpx.Response(404, json={"errorCode": "NOT_FOUND", "errorMessage": "gone"})
        return httpx.Response(409, json={"errorCode": "ALREADY_PARTNERS", "errorMessage": "x"})

    ops = twin(answer)
    await ops.delete_replication_partner(site("twin"), "site-b", key="k", on_partner_side=True)
    await ops.add_replication_partner(site("twin"), "site-b", key="k2", on_partner_side=True)
    # On this site's side the same answers are real failures: SEPM said it did nothing.
    with pytest.raises(HostOperationError) as failed:
        await ops.delete_replication_partner(site("twin"), "site-b", key="k3")
    assert failed.value.code == "NOT_FOUND"
    await ops.close()


async def test_a_person_is_sent_to_the_partners_console_for_its_side() -> None:
    ops = ManualHostOperations(site())
    with pytest.raises(ManualTaskPending) as caught:
        await ops.delete_replication_partner(site(), "site-b", key="k", on_partner_side=True)
    task = caught.value.task
    assert "console of site site-b" in task.instructions
    assert "right-click site-a" in task.instructions
    with pytest.raises(ManualTaskPending) as caught:
        await ops.add_replication_partner(site(), "site-b", key="k2", on_partner_side=True)
    task = caught.value.task
    assert "console of site site-b" in task.instructions
    # The order that keeps site-a's database: site-a re-added first and replicated.
    assert "after" in task.instructions and "SUCCEEDED" in task.instructions
    assert "already lists site-a" in task.instructions


async def test_the_near_side_tasks_announce_the_partners_side() -> None:
    ops = ManualHostOperations(site())
    with pytest.raises(ManualTaskPending) as caught:
        await ops.add_replication_partner(site(), "site-b", key="k")
    text = caught.value.task.instructions
    assert "overwrites site site-b's database with site site-a's" in text
    assert "during the rotation are lost" in text


class _Vault:
    async def get(self, ref: str) -> dict[str, Any]:
        return {"username": "svc", "password": "p"}


class _NoWinRM:
    def __init__(self, **options: Any) -> None:
        raise AssertionError("the partner's side must not be attempted with this site's WinRM")


async def test_winrm_hands_the_partners_side_to_a_person_or_refuses() -> None:
    alone = WinRMHostOperations(site("winrm"), cast(Vault, _Vault()), protocol_factory=_NoWinRM)
    with pytest.raises(HostOperationError) as refused:
        await alone.delete_replication_partner(
            site("winrm"), "site-b", key="k", on_partner_side=True
        )
    assert refused.value.code == "PARTNER_SIDE_UNREACHABLE"
    assert "site-b" in str(refused.value)

    wired = host_operations_for(site("winrm"), cast(Vault, _Vault()))
    with pytest.raises(ManualTaskPending) as caught:
        await wired.add_replication_partner(site("winrm"), "site-b", key="k", on_partner_side=True)
    assert "console of site site-b" in caught.value.task.instructions
    await wired.close()
