"""Domains and policy inheritance as SEPM's REST definition gives them.

GET /domains lists every domain; /groups and /computers take `domain`, locations `domainId`,
and without them SEPM answers for the administrator's login domain only. A group with
policyInheritanceEnabled lists its non-inheriting parent's locations (Group.defaultLocationId is
documented as "its non-inherit parent's default location").
"""

from __future__ import annotations

import pytest

from certrotate_shared.sepm.api import SepmDomain, SepmError, SepmMalformedAnswerError
from certrotate_shared.sepm.domains import iter_fleet_pages, site_groups
from certrotate_shared.sepm.groups import SepmGroup, policy_owners
from tests.unit.sepm.test_client_mechanics import Clock, FakeSepm, client, ok, status

pytestmark = pytest.mark.unit

DEFAULT = {"id": "D-DEFAULT", "name": "Default", "enable": True, "createdTime": 1360247301316}
EMEA = {"id": "D-EMEA", "name": "EMEA", "enable": False, "createdTime": 1360247301317}


@pytest.fixture
def sepm() -> FakeSepm:
    return FakeSepm()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def group(gid: str, path: str, domain: dict, *, inherits: bool = False) -> dict:
    return {
        "id": gid,
        "name": path.rsplit("\\", 1)[-1],
        "fullPathName": path,
        "policySerialNumber": f"{gid[:4]}-01/05/2026 09:00:00 000",
        "policyInheritanceEnabled": inherits,
        "domain": {"id": domain["id"], "name": domain["name"]},
    }


async def test_domains_are_listed_with_id_name_and_whether_enabled(sepm, clock):
    sepm.on("/domains", ok([DEFAULT, EMEA]))
    assert await client(sepm, clock).domains() == [
        SepmDomain(id="D-DEFAULT", name="Default", enabled=True),
        SepmDomain(id="D-EMEA", name="EMEA", enabled=False),
    ]


async def test_a_missing_domains_call_is_an_error_not_a_single_default_domain(sepm, clock):
    # SEPM's REST definition has GET /domains ("Gets a list of all accessible domains") beside
    # /groups and /computers: a 404 means something else answered (a proxy, a wrong base URL),
    # and guessing "one domain" would hide the other domains' clients.
    sepm.on("/domains", status(404))
    with pytest.raises(SepmError) as raised:
        await client(sepm, clock).domains()
    assert raised.value.status == 404 and raised.value.retryable is False


@pytest.mark.parametrize(
    "answer", [{"content": [DEFAULT]}, [{"name": "Default"}], ["D-DEFAULT"]], ids=str
)
async def test_a_malformed_domains_answer_is_final(sepm, clock, answer):
    sepm.on("/domains", ok(answer))
    with pytest.raises(SepmMalformedAnswerError):
        await client(sepm, clock).domains()


async def test_groups_and_computers_are_asked_per_domain(sepm, clock):
    sepm.on("/groups", ok({"content": [group("AAAA1", "My Company", EMEA)], "lastPage": True}))
    sepm.on("/computers", ok({"content": [], "lastPage": True}))
    api = client(sepm, clock)
    [g async for g in api.iter_groups(domain_id="D-EMEA")]
    [p async for p in api.iter_computer_pages(domain_id="D-EMEA")]
    assert sepm.calls("/groups")[0].url.params["domain"] == "D-EMEA"
    assert sepm.calls("/computers")[0].url.params["domain"] == "D-EMEA"


async def test_groups_of_another_domain_than_asked_are_refused(sepm, clock):
    # If SEPM ignored the parameter (or wanted the domain's name), we would change one domain
    # twice and another never: refuse instead.
    sepm.on("/groups", ok({"content": [group("AAAA1", "My Company", DEFAULT)], "lastPage": True}))
    with pytest.raises(SepmMalformedAnswerError, match="D-EMEA"):
        [g async for g in client(sepm, clock).iter_groups(domain_id="D-EMEA")]


async def test_site_groups_walks_every_domain(sepm, clock):
    def groups_of(request):
        wanted = {"D-DEFAULT": DEFAULT, "D-EMEA": EMEA}[request.url.params["domain"]]
        content = [group(str(wanted["id"])[2:6] + "1", "My Company", wanted)]
        return ok({"content": content, "lastPage": True})(request)

    sepm.on("/domains", ok([DEFAULT, EMEA]))
    sepm.on("/groups", groups_of)
    groups = await site_groups(client(sepm, clock))
    assert [(g.domain_id, g.full_path_name) for g in groups] == [
        ("D-DEFAULT", "My Company"),
        ("D-EMEA", "My Company"),
    ]


async def test_fleet_pages_cover_every_domain(sepm, clock):
    def computers_of(request):
        domain = request.url.params["domain"]
        content = [{"uniqueId": f"{domain}-PC", "group": {"domain": {"id": domain}}}]
        return ok({"content": content, "lastPage": True})(request)

    sepm.on("/domains", ok([DEFAULT, EMEA]))
    sepm.on("/computers", computers_of)
    api = client(sepm, clock)
    ids = [c["uniqueId"] async for page in iter_fleet_pages(api, last_update_ms=5) for c in page]
    assert ids == ["D-DEFAULT-PC", "D-EMEA-PC"]
    assert {r.url.params["lastUpdate"] for r in sepm.calls("/computers")} == {"5"}


def tree(*rows: tuple[str, str, bool], domain: str = "D1") -> list[SepmGroup]:
    return [
        SepmGroup(
            id=gid,
            full_path_name=path,
            policy_serial=f"{gid}-serial",
            inherits=inherits,
            domain_id=domain,
        )
        for gid, path, inherits in rows
    ]


def test_an_inheriting_group_is_owned_by_its_nearest_non_inheriting_ancestor():
    groups = tree(
        ("ROOT", "My Company", False),
        ("G1", "My Company\\group 1", False),
        ("SUB", "My Company\\group 1\\sub group 1", True),
        ("SUBSUB", "My Company\\group 1\\sub group 1\\deeper", True),
        ("DEF", "My Company\\Default Group", True),
    )
    owners = {gid: owner.id for gid, owner in policy_owners(groups).items()}
    assert owners == {
        "ROOT": "ROOT",
        "G1": "G1",
        "SUB": "G1",
        "SUBSUB": "G1",
        "DEF": "ROOT",
    }


def test_the_root_owns_its_policy_even_if_sepm_says_it_inherits():
    groups = tree(("ROOT", "My Company", True), ("C", "My Company\\child", True))
    assert {g: o.id for g, o in policy_owners(groups).items()} == {"ROOT": "ROOT", "C": "ROOT"}


def test_paths_are_resolved_within_their_own_domain():
    groups = tree(("R1", "My Company", False), ("C1", "My Company\\Laptops", True))
    groups += tree(("R2", "My Company", False), ("C2", "My Company\\Laptops", True), domain="D2")
    owners = {g: o.id for g, o in policy_owners(groups).items()}
    assert owners["C1"] == "R1" and owners["C2"] == "R2"


def test_an_inheriting_group_whose_parent_is_not_listed_is_refused():
    groups = tree(("C", "My Company\\gone\\child", True), ("R", "My Company", False))
    with pytest.raises(SepmError, match="gone") as raised:
        policy_owners(groups)
    assert raised.value.retryable is False
