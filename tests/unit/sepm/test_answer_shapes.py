"""The connector reads SEPM's real answer shapes and refuses malformed ones loudly.

The location strings are recorded from SEPM's own REST definition ("Get Location IDs For Group",
`hasName`) as PSSymantecSEPM's Get-SEPMLocation reads them from live servers: with hasName=true
each item is "<location name>:api/v1/locations/<location id>".
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from certrotate_shared.sepm.api import SepmError, SepmLocation, SepmMalformedAnswerError
from tests.unit.sepm.test_client_mechanics import Clock, FakeSepm, client, ok

pytestmark = pytest.mark.unit

GROUP = "BDDDF2E6AC17D44C7007E1EA7851E110"
RECORDED_WITH_NAMES = [
    "Default:api/v1/locations/60B5C584AC17D44C6CC60471B7292FC4",
    "Location 1 - Internal:api/v1/locations/0CCB0536AC1485D1233F341B9495C3C5",
    "Location 2 - VPN:api/v1/locations/F5E857C9AC1485D13095A0D6E1CD5B25",
]


@pytest.fixture
def sepm() -> FakeSepm:
    return FakeSepm()


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_location_strings_with_names_give_each_name_and_id(sepm, clock):
    sepm.on(f"/groups/{GROUP}/locations", ok(RECORDED_WITH_NAMES))
    locations = await client(sepm, clock).group_locations(GROUP)
    assert locations == [
        SepmLocation(id="60B5C584AC17D44C6CC60471B7292FC4", name="Default"),
        SepmLocation(id="0CCB0536AC1485D1233F341B9495C3C5", name="Location 1 - Internal"),
        SepmLocation(id="F5E857C9AC1485D13095A0D6E1CD5B25", name="Location 2 - VPN"),
    ]
    [request] = sepm.calls(f"/groups/{GROUP}/locations")
    assert request.url.params["hasName"] == "true"


async def test_a_location_name_with_a_colon_keeps_the_text_before_the_first_colon(sepm, clock):
    sepm.on(f"/groups/{GROUP}/locations", ok(["VPN: remote:api/v1/locations/F5E857C9"]))
    [location] = await client(sepm, clock).group_locations(GROUP)
    assert location == SepmLocation(id="F5E857C9", name="VPN")


async def test_plain_location_ids_without_names_are_read_too(sepm, clock):
    sepm.on(f"/groups/{GROUP}/locations", ok(["60B5C584AC17D44C6CC60471B7292FC4"]))
    [location] = await client(sepm, clock).group_locations(GROUP)
    assert location == SepmLocation(id="60B5C584AC17D44C6CC60471B7292FC4", name=None)


async def test_the_old_object_shape_is_tolerated(sepm, clock):
    sepm.on(f"/groups/{GROUP}/locations", ok([{"name": "Default", "id": "60B5C584"}]))
    assert await client(sepm, clock).group_locations(GROUP) == [
        SepmLocation(id="60B5C584", name="Default")
    ]


async def test_locations_are_asked_in_the_groups_domain(sepm, clock):
    sepm.on(f"/groups/{GROUP}/locations", ok(RECORDED_WITH_NAMES[:1]))
    await client(sepm, clock).group_locations(GROUP, domain_id="DOM1")
    [request] = sepm.calls(f"/groups/{GROUP}/locations")
    assert request.url.params["domainId"] == "DOM1"


MALFORMED_LOCATIONS = [
    pytest.param({"content": RECORDED_WITH_NAMES}, id="object-not-array"),
    pytest.param([42], id="number-item"),
    pytest.param([None], id="null-item"),
    pytest.param(["Default:api/v1/locations/"], id="empty-id"),
    pytest.param([""], id="empty-string"),
    pytest.param([{"name": "Default"}], id="object-without-id"),
    pytest.param([{"name": "Default", "id": 7}], id="object-with-numeric-id"),
]


@pytest.mark.parametrize("answer", MALFORMED_LOCATIONS)
async def test_a_malformed_locations_answer_is_a_final_typed_error(sepm, clock, answer):
    sepm.on(f"/groups/{GROUP}/locations", ok(answer))
    with pytest.raises(SepmMalformedAnswerError) as raised:
        await client(sepm, clock).group_locations(GROUP)
    assert isinstance(raised.value, SepmError)
    assert raised.value.retryable is False
    assert f"/groups/{GROUP}/locations" in str(raised.value)
    assert len(sepm.calls(f"/groups/{GROUP}/locations")) == 1


def text(body: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _request: httpx.Response(200, text=body)


MALFORMED_CALLS = [
    pytest.param("/version", text("<html>login</html>"), "version", id="version-html"),
    pytest.param("/version", ok(["14.3"]), "version", id="version-array"),
    pytest.param("/replication/is_replicated", ok("yes"), "is_replicated", id="replicated-str"),
    pytest.param("/replication/status", ok([]), "replication_status", id="status-array"),
    pytest.param("/stats/client/onlinestatus", ok(3), "online_status", id="online-number"),
    pytest.param("/groups/G/locations/L/settings", ok([]), "settings", id="settings-array"),
    pytest.param("/groups", ok([{"id": "A"}]), "groups", id="groups-array-not-page"),
    pytest.param("/groups", ok({"content": {"id": "A"}}), "groups", id="content-object"),
    pytest.param("/groups", ok({"content": ["A"], "lastPage": True}), "groups", id="group-str"),
    pytest.param("/groups", ok({"content": [{"name": "A"}]}), "groups", id="group-no-id"),
    pytest.param("/computers", ok({"content": [1], "lastPage": True}), "computers", id="pc-num"),
    pytest.param(
        "/computers",
        ok({"content": [{"uniqueId": "C1"}], "lastPage": "no"}),
        "computers",
        id="lastpage-str",
    ),
    pytest.param("/replication/replicatenow", ok({"code": "zero"}), "replicate", id="code-str"),
    pytest.param(
        "/replication/status", ok({"replicationStatus": []}), "replication_status", id="status-list"
    ),
    pytest.param(
        "/replication/status",
        ok({"replicationStatus": {"replicationPartnerStatusList": {"id": "P"}}}),
        "replication_status",
        id="partners-object",
    ),
    pytest.param(
        "/replication/status",
        ok({"replicationStatus": {"replicationPartnerStatusList": ["site-b"]}}),
        "replication_status",
        id="partner-string",
    ),
    pytest.param(
        "/stats/client/onlinestatus",
        ok({"clientCountStatsList": [["ONLINE", 3]]}),
        "online_status",
        id="counts-arrays",
    ),
]


async def _call(api, which: str):
    if which == "version":
        return await api.version()
    if which == "is_replicated":
        return await api.is_replicated()
    if which == "replication_status":
        return await api.replication_status()
    if which == "online_status":
        return await api.online_status()
    if which == "settings":
        return await api.get_location_settings("G", "L")
    if which == "groups":
        return [g async for g in api.iter_groups()]
    if which == "computers":
        return [p async for p in api.iter_computer_pages()]
    return await api.replicate_now("site-b")


@pytest.mark.parametrize(("path", "answer", "which"), MALFORMED_CALLS)
async def test_every_malformed_answer_is_a_final_typed_error(sepm, clock, path, answer, which):
    sepm.on(path, answer)
    with pytest.raises(SepmMalformedAnswerError) as raised:
        await _call(client(sepm, clock), which)
    assert raised.value.retryable is False
    assert path in str(raised.value)
    assert clock.slept == []


async def test_a_well_formed_replication_status_is_returned_as_is(sepm, clock):
    status = {
        "replicationStatus": {
            "id": "S1",
            "siteName": "site-a",
            "replicationPartnerStatusList": [{"id": "P1", "name": "site-b", "status_code": "OK"}],
        }
    }
    sepm.on("/replication/status", ok(status))
    assert await client(sepm, clock).replication_status() == status
