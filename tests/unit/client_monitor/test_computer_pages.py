"""Reading SEPM's GET /computers pages straight from their bytes: only the fields a watch uses,
SEPM's other fields ignored, missing optional ones tolerated, a wrong type refused by name."""

import json
from typing import Any

import pytest

from certrotate_shared.sepm.api import SepmMalformedAnswerError
from client_monitor.adapters.computer_pages import read_computers_page
from tests.unit.client_monitor.fakes import GROUP_A, OLD_A, T0_MS, computer

pytestmark = pytest.mark.unit
WHERE = "GET /computers"
DOMAIN = "16D3D9F991F09AF1216FC3B4F603E34A"


def body(*records: dict[str, Any], last: Any = True, **page: Any) -> bytes:
    # json, not orjson: some of these answers hold integers past 64 bits.
    return json.dumps({"content": list(records), "lastPage": last, **page}).encode()


def refused(raw: bytes, domain_id: str | None = None) -> str:
    with pytest.raises(SepmMalformedAnswerError) as raised:
        read_computers_page(raw, WHERE, domain_id=domain_id)
    assert raised.value.retryable is False, "the same server answers the same way again"
    return str(raised.value)


def test_a_page_gives_the_fields_a_watch_uses_and_its_last_page_flag():
    page, last = read_computers_page(
        body(computer(1), computer(2, online=False), last=False), WHERE
    )
    assert last is False
    assert page.unique_ids == [f"{1:032X}", f"{2:032X}"]
    assert page.computer_names == ["WS00001", "WS00002"]
    assert page.group_ids == [GROUP_A, GROUP_A]
    assert page.serials == [OLD_A, OLD_A]
    assert page.online == [True, False]
    assert page.last_update_ms == [T0_MS, T0_MS]
    assert len(page) == 2


def test_the_fields_of_a_real_sepm_that_a_watch_does_not_read_are_ignored():
    # SEPM's Computer definition has 147 fields; a page object has more than content.
    record = {
        **computer(1),
        "operatingSystem": "Windows 11",
        "ipAddresses": ["10.0.0.1"],
        "macAddresses": None,
        "infected": 0,
        "group": {**computer(1)["group"], "source": "LOCAL", "domain": {"id": DOMAIN}},
        "atpDeviceId": {"nested": [1, 2, {"deep": True}]},
    }
    page, _ = read_computers_page(
        body(record, totalElements=1, sort=[{"property": "COMPUTER_NAME"}]), WHERE
    )
    assert page.unique_ids == [f"{1:032X}"] and page.serials == [OLD_A]


def test_missing_or_null_optional_fields_are_tolerated():
    bare = {"uniqueId": "C1"}
    nulls = {
        "uniqueId": "C2",
        "computerName": None,
        "onlineStatus": None,
        "lastUpdateTime": None,
        "profileSerialNo": None,
        "group": None,
    }
    groupless = {"uniqueId": "C3", "group": {"name": "no id"}}
    page, last = read_computers_page(body(bare, nulls, groupless), WHERE)
    assert page.unique_ids == ["C1", "C2", "C3"]
    assert page.computer_names == ["", "", ""]
    assert page.group_ids == [None, None, None]  # not in a watched group
    assert page.serials == ["", "", ""]  # never counts as reached
    assert page.online == [False, False, False]
    assert page.last_update_ms == [0, 0, 0]
    assert last is True


def test_computers_with_and_without_the_optional_fields_keep_their_own_values():
    full = {
        "uniqueId": "C1",
        "computerName": "WS-1",
        "onlineStatus": 1,
        "lastUpdateTime": T0_MS,
        "profileSerialNo": OLD_A,
        "group": {"id": GROUP_A, "domain": {"id": DOMAIN}},
    }
    nulls = {"uniqueId": "C2", "computerName": None, "onlineStatus": 0, "group": None}
    domainless = {**full, "uniqueId": "C3", "group": {"id": GROUP_A}, "profileSerialNo": None}
    page, _ = read_computers_page(body(full, nulls, domainless, full | {"uniqueId": "C4"}),
                                  WHERE, domain_id=DOMAIN)  # fmt: skip
    assert page.unique_ids == ["C1", "C2", "C3", "C4"]
    assert page.computer_names == ["WS-1", "", "WS-1", "WS-1"]
    assert page.group_ids == [GROUP_A, None, GROUP_A, GROUP_A]
    assert page.serials == [OLD_A, "", "", OLD_A]
    assert page.online == [True, False, True, True]
    assert page.last_update_ms == [T0_MS, 0, T0_MS, T0_MS]


def test_an_answer_without_content_or_last_page_is_an_empty_last_page():
    page, last = read_computers_page(b"{}", WHERE)
    assert len(page) == 0 and last is True
    page, last = read_computers_page(b'{"content": null, "lastPage": false}', WHERE)
    assert len(page) == 0 and last is False


@pytest.mark.parametrize(
    ("broken", "field"),
    [
        ({"group": "My Company\\Default"}, "group"),
        ({"group": {"id": 42}}, "group.id"),
        ({"lastUpdateTime": "yesterday"}, "lastUpdateTime"),
        ({"lastUpdateTime": 1.5}, "lastUpdateTime"),
        ({"lastUpdateTime": 2**70}, "lastUpdateTime"),
        ({"profileSerialNo": 12345}, "profileSerialNo"),
        ({"onlineStatus": "ONLINE"}, "onlineStatus"),
        ({"onlineStatus": 2}, "onlineStatus"),
        ({"onlineStatus": True}, "onlineStatus"),
        ({"computerName": ["WS1"]}, "computerName"),
    ],
    ids=[
        "group-string",
        "group-id-number",
        "update-text",
        "update-fraction",
        "update-beyond-int64",
        "serial-number",
        "status-text",
        "status-out-of-range",
        "status-boolean",
        "name-array",
    ],
)
def test_a_field_of_the_wrong_type_is_refused_naming_the_computer_and_the_field(broken, field):
    message = refused(body(computer(1), {**computer(2), **broken}))
    assert f"{2:032X}" in message
    assert field in message
    assert "yesterday" not in message and "ONLINE" not in message  # types, never values


@pytest.mark.parametrize(
    ("record", "says"),
    [
        ({"computerName": "WS1"}, "uniqueId"),
        ({"uniqueId": None}, "uniqueId"),
        ({"uniqueId": ""}, "uniqueId"),
        ({"uniqueId": "   "}, "uniqueId"),
        ({"uniqueId": 7}, "uniqueId"),
        ({"uniqueId": "X" * 129}, "uniqueId"),
    ],
    ids=["missing", "null", "empty", "blank", "number", "overlong"],
)
def test_a_computer_without_a_usable_unique_id_is_refused(record, says):
    message = refused(body(computer(1), record))
    assert says in message


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"<html><body>Please log in</body></html>", "not JSON"),
        (b"", "not JSON"),
        (b'[{"uniqueId": "C1"}]', "object"),
        (b'{"content": {"uniqueId": "C1"}}', "content"),
        (b'{"content": ["C1"]}', "content"),
        (b'{"content": [], "lastPage": "no"}', "lastPage"),
    ],
    ids=["login-page", "empty-body", "array", "content-object", "content-strings", "last-text"],
)
def test_an_answer_that_is_not_a_page_of_computers_is_refused(raw, says):
    message = refused(raw)
    assert says in message
    assert "Please log in" not in message


def test_a_computer_of_another_domain_than_the_one_asked_for_is_refused():
    ours = {**computer(1), "group": {"id": GROUP_A, "domain": {"id": DOMAIN.lower()}}}
    theirs = {**computer(2), "group": {"id": GROUP_A, "domain": {"id": "D-OTHER"}}}
    page, _ = read_computers_page(body(ours, computer(3)), WHERE, domain_id=DOMAIN)
    assert len(page) == 2  # same domain in another case, and a computer naming none
    message = refused(body(ours, theirs), domain_id=DOMAIN)
    assert "D-OTHER" in message and DOMAIN in message
