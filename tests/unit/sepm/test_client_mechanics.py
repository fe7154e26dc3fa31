"""The SEPM connector's protocol mechanics against a scripted transport (no network).

Only the mechanics live here (re-login, throttling, paging, what is retried); the connector's
behaviour against SEPM's real shapes is tested against the twin in tests/integration/sepm.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import httpx
import pytest

from certrotate_shared.sepm.api import SepmAuthError, SepmError
from certrotate_shared.sepm.client import RetryPolicy, SepmClient, SepmCredentials

pytestmark = pytest.mark.unit

URL = "https://sepm.example:8446/sepm/api/v1"
PASSWORD = "pa55-w0rd-never-logged"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class FakeSepm:
    """Answers logins with numbered tokens and everything else from a script per path."""

    def __init__(self, ttl: int = 3600) -> None:
        self.ttl = ttl
        self.tokens = 0
        self.valid: set[str] = set()
        self.requests: list[httpx.Request] = []
        self.script: dict[str, list[Callable[[httpx.Request], httpx.Response]]] = {}

    def on(self, path: str, *answers: Callable[[httpx.Request], httpx.Response]) -> None:
        self.script.setdefault(path, []).extend(answers)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path.removeprefix("/sepm/api/v1")
        if path == "/identity/authenticate":
            body = json.loads(request.content)
            if body["password"] != PASSWORD:
                return httpx.Response(401, json={"errorMessage": "Invalid username or password"})
            self.tokens += 1
            token = f"token-{self.tokens}"
            self.valid.add(token)
            return httpx.Response(200, json={"token": token, "tokenExpiration": self.ttl})
        if path == "/identity/logout":
            return httpx.Response(204)
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.valid and path != "/version":
            return httpx.Response(401, json={"errorMessage": "Unauthorized"})
        answers = self.script.get(path)
        if answers:
            return answers.pop(0)(request) if len(answers) > 1 else answers[0](request)
        return httpx.Response(404, json={"errorMessage": f"no route {path}"})

    def calls(self, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path.endswith(path)]


def ok(body: object) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _request: httpx.Response(200, json=body)


def status(code: int, **headers: str) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _request: httpx.Response(code, json={"errorMessage": "boom"}, headers=headers)


def client(sepm: FakeSepm, clock: Clock, password: str = PASSWORD, **kwargs) -> SepmClient:
    return SepmClient(
        URL,
        SepmCredentials(username="api-admin", password=password),
        transport=httpx.MockTransport(sepm.handle),
        sleep=clock.sleep,
        monotonic=clock.monotonic,
        retry=kwargs.pop("retry", RetryPolicy(backoff_base_s=1.0, retry_after_cap_s=60.0)),
        **kwargs,
    )


@pytest.fixture
def sepm() -> FakeSepm:
    return FakeSepm()


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_logs_in_lazily_once_and_sends_the_bearer_token(sepm, clock):
    sepm.on("/replication/is_replicated", ok(True))
    api = client(sepm, clock)
    assert sepm.requests == []
    assert await api.is_replicated() is True
    assert await api.is_replicated() is True
    assert api.logins == 1
    assert sepm.calls("/is_replicated")[1].headers["authorization"] == "Bearer token-1"


async def test_a_401_logs_in_again_and_repeats_the_call(sepm, clock):
    sepm.on("/replication/is_replicated", ok(True))
    api = client(sepm, clock)
    await api.is_replicated()
    sepm.valid.clear()  # the server forgot every token (expiry, restart)
    assert await api.is_replicated() is True
    assert api.logins == 2
    assert [r.headers["authorization"] for r in sepm.calls("/is_replicated")] == [
        "Bearer token-1",
        "Bearer token-1",
        "Bearer token-2",
    ]


async def test_a_401_is_retried_after_a_second_login_but_not_forever(sepm, clock):
    sepm.on("/replication/is_replicated", status(401), status(401), ok(True))
    api = client(sepm, clock)
    assert await api.is_replicated() is True
    assert api.logins == 3
    sepm.script["/replication/is_replicated"] = [status(401)]  # 401 whatever the token
    with pytest.raises(SepmError) as raised:
        await api.is_replicated()
    assert raised.value.status == 401
    assert len(sepm.calls("/is_replicated")) == 3 + 3  # the call, then two logins again


async def test_a_token_near_expiry_is_renewed_before_the_call(sepm, clock):
    sepm.ttl = 600
    sepm.on("/replication/is_replicated", ok(False))
    api = client(sepm, clock)
    await api.is_replicated()
    clock.now += 590  # within the renewal margin, still valid on the server
    await api.is_replicated()
    assert api.logins == 2
    assert [r.headers["authorization"] for r in sepm.calls("/is_replicated")] == [
        "Bearer token-1",
        "Bearer token-2",
    ]


async def test_429_waits_for_retry_after_with_jitter_then_succeeds(sepm, clock):
    sepm.on(
        "/replication/status",
        status(429, **{"Retry-After": "7"}),
        status(429, **{"Retry-After": "7"}),
        ok({"replicationStatus": {"replicationPartnerStatusList": []}}),
    )
    api = client(sepm, clock)
    assert await api.replication_status() == {
        "replicationStatus": {"replicationPartnerStatusList": []}
    }
    assert len(clock.slept) == 2
    assert all(7.0 <= s <= 7.0 * 1.25 for s in clock.slept)


async def test_retry_after_is_capped(sepm, clock):
    sepm.on("/replication/status", status(429, **{"Retry-After": "86400"}), ok({}))
    api = client(sepm, clock, retry=RetryPolicy(retry_after_cap_s=30.0))
    await api.replication_status()
    assert 30.0 <= clock.slept[0] <= 30.0 * 1.25


async def test_a_throttling_storm_that_never_ends_is_reported_as_retryable(sepm, clock):
    sepm.on("/replication/status", status(429, **{"Retry-After": "1"}))
    api = client(sepm, clock, retry=RetryPolicy(max_throttled=3))
    with pytest.raises(SepmError) as raised:
        await api.replication_status()
    assert raised.value.status == 429
    assert raised.value.retryable is True
    assert len(sepm.calls("/replication/status")) == 4


async def test_pages_from_index_1_until_last_page_with_last_update(sepm, clock):
    def page(index: int, last: bool) -> Callable[[httpx.Request], httpx.Response]:
        content = [{"uniqueId": f"C{index}-{i}"} for i in range(2)]
        return ok({"content": content, "lastPage": last, "number": index - 1})

    sepm.on("/computers", page(1, False), page(2, False), page(3, True))
    api = client(sepm, clock)
    pages = [p async for p in api.iter_computer_pages(last_update_ms=1234, page_size=2)]
    assert [c["uniqueId"] for p in pages for c in p] == [
        f"C{i}-{j}" for i in (1, 2, 3) for j in range(2)
    ]
    params = [dict(r.url.params) for r in sepm.calls("/computers")]
    assert params == [
        {"lastUpdate": "1234", "pageIndex": str(i), "pageSize": "2"} for i in (1, 2, 3)
    ]


async def test_computer_pages_can_be_handed_to_the_caller_undecoded(sepm, clock):
    # A watch of a million clients decodes the few fields it needs from the bytes itself.
    bodies = [
        json.dumps({"content": [{"uniqueId": f"C{i}"}], "lastPage": i == 2}).encode()
        for i in (1, 2)
    ]
    sepm.on("/computers", *(lambda _r, b=b: httpx.Response(200, content=b) for b in bodies))
    seen: list[tuple[bytes, str]] = []

    def read(body: bytes, where: str) -> tuple[list[bytes], bool]:
        seen.append((body, where))
        return [body], json.loads(body)["lastPage"]

    api = client(sepm, clock)
    pages = [p async for p in api.iter_computer_page_bodies(read, page_size=1, domain_id="D1")]
    assert pages == [[bodies[0]], [bodies[1]]]
    assert seen == [(b, "GET /computers") for b in bodies]
    params = [dict(r.url.params) for r in sepm.calls("/computers")]
    assert params == [
        {"lastUpdate": "0", "domain": "D1", "pageIndex": str(i), "pageSize": "1"} for i in (1, 2)
    ]


async def test_a_401_in_the_middle_of_a_scan_repeats_that_page_only(sepm, clock):
    served: list[str] = []

    def page(request: httpx.Request) -> httpx.Response:
        index = int(request.url.params["pageIndex"])
        if index == 2 and "token-1" in request.headers["authorization"]:
            sepm.valid.discard("token-1")
            return httpx.Response(401, json={"errorMessage": "expired"})
        served.append(str(index))
        return httpx.Response(
            200, json={"content": [{"uniqueId": str(index)}], "lastPage": index == 3}
        )

    sepm.on("/computers", page)
    api = client(sepm, clock)
    ids = [c["uniqueId"] async for p in api.iter_computer_pages(page_size=1) for c in p]
    assert ids == ["1", "2", "3"]
    assert served == ["1", "2", "3"]
    assert api.logins == 2


async def test_groups_are_paged_too(sepm, clock):
    sepm.on(
        "/groups",
        ok({"content": [{"id": "A"}], "lastPage": False}),
        ok({"content": [{"id": "B"}], "lastPage": True}),
    )
    api = client(sepm, clock)
    assert [g["id"] async for g in api.iter_groups(page_size=1)] == ["A", "B"]


async def test_5xx_on_a_get_is_retried_with_growing_back_off(sepm, clock):
    sepm.on("/version", status(503), status(502), ok({"API_VERSION": "14.3.9000"}))
    api = client(sepm, clock)
    assert (await api.version())["API_VERSION"] == "14.3.9000"
    assert len(clock.slept) == 2
    assert 1.0 <= clock.slept[0] <= 1.25 and 2.0 <= clock.slept[1] <= 2.5


async def test_5xx_on_replicatenow_is_reported_not_repeated(sepm, clock):
    sepm.on("/replication/replicatenow", status(500))
    api = client(sepm, clock)
    with pytest.raises(SepmError) as raised:
        await api.replicate_now("site-b")
    assert raised.value.status == 500
    assert raised.value.retryable is True
    assert len(sepm.calls("/replication/replicatenow")) == 1
    assert clock.slept == []


async def test_replicatenow_sends_the_only_values_sepm_accepts(sepm, clock):
    sepm.on("/replication/replicatenow", ok({"code": 0}))
    api = client(sepm, clock)
    assert await api.replicate_now("site-b") == 0
    request = sepm.calls("/replication/replicatenow")[0]
    assert request.method == "POST"
    assert dict(request.url.params) == {
        "partnerSiteName": "site-b",
        "content": "false",
        "logs": "false",
    }


async def test_a_read_timeout_on_replicatenow_is_not_repeated_but_on_a_get_it_is(clock):
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        seen.append(path)
        if path.endswith("/authenticate"):
            return httpx.Response(200, json={"token": "t", "tokenExpiration": 3600})
        if path.endswith("/is_replicated") and seen.count(path) > 1:
            return httpx.Response(200, json=True)
        raise httpx.ReadTimeout("read timed out", request=request)

    api = SepmClient(
        URL,
        SepmCredentials(username="u", password=PASSWORD),
        transport=httpx.MockTransport(handler),
        sleep=clock.sleep,
        monotonic=clock.monotonic,
    )
    with pytest.raises(SepmError, match="did not answer"):
        await api.replicate_now("site-b")
    assert sum(p.endswith("/replicatenow") for p in seen) == 1
    assert await api.is_replicated() is True
    assert sum(p.endswith("/is_replicated") for p in seen) == 2


async def test_a_404_is_final_and_not_retried(sepm, clock):
    api = client(sepm, clock)
    with pytest.raises(SepmError) as raised:
        await api.group_locations("NOPE")
    assert raised.value.status == 404
    assert raised.value.retryable is False
    assert len(sepm.calls("/groups/NOPE/locations")) == 1


async def test_refused_account_is_a_non_retryable_auth_error_without_the_password(
    sepm, clock, caplog
):
    caplog.set_level(logging.DEBUG)
    api = client(sepm, clock, password="wrong-" + PASSWORD)
    with pytest.raises(SepmAuthError) as raised:
        await api.is_replicated()
    assert raised.value.retryable is False
    assert raised.value.status == 401
    assert "refused the API account 'api-admin'" in str(raised.value)
    assert PASSWORD not in str(raised.value)
    assert len(sepm.calls("/identity/authenticate")) == 1


async def test_logs_name_each_call_but_never_the_password_or_token(sepm, clock, caplog):
    caplog.set_level(logging.DEBUG, logger="certrotate_shared.sepm.client")
    sepm.on("/replication/is_replicated", ok(True))
    api = client(sepm, clock)
    await api.is_replicated()
    await api.close()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "GET /replication/is_replicated -> 200" in text
    assert "POST /identity/authenticate -> 200" in text
    assert "POST /identity/logout -> 204" in text
    assert PASSWORD not in text and "token-1" not in text
    assert "Bearer" not in text


async def test_close_logs_out_the_session(sepm, clock):
    sepm.on("/replication/is_replicated", ok(True))
    api = client(sepm, clock)
    await api.is_replicated()
    await api.close()
    logout = sepm.calls("/identity/logout")
    assert [r.headers["authorization"] for r in logout] == ["Bearer token-1"]
