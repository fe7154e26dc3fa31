"""Sites, servers, tokens and tasks are listed a page at a time: `limit`, an opaque cursor in
`next_cursor` and in a `Link: <...>; rel="next"` header carrying the same filters."""

from __future__ import annotations

import re

import pytest

from tests.integration.orchestrator.support import server_body, site_body

pytestmark = pytest.mark.integration


async def every_page(api, path: str, **params) -> tuple[list[dict], list[str]]:
    items: list[dict] = []
    links: list[str] = []
    answer = await api.get(path, params={**params, "limit": 2})
    while True:
        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert len(page["items"]) <= 2
        items += page["items"]
        if page["next_cursor"] is None:
            assert "link" not in answer.headers
            return items, links
        link = re.fullmatch(r'<(/v1/[^>]+)>; rel="next"', answer.headers["link"])
        assert link is not None, answer.headers["link"]
        links.append(link.group(1))
        answer = await api.get(link.group(1))


async def test_sites_and_servers_come_page_by_page_in_name_order(embedded):
    api = embedded.api
    for name in ("site-c", "site-d", "site-e"):
        assert (await api.post("/v1/sites", json=site_body(name))).status_code == 201
    sites, _ = await every_page(api, "/v1/sites")
    assert [s["name"] for s in sites] == ["site-a", "site-c", "site-d", "site-e"]
    assert sites[0]["servers"] == ["sepm-a1", "sepm-a2"]
    for name in ("sepm-c1", "sepm-c2", "sepm-c3"):
        await api.post("/v1/servers", json=server_body(name, "site-c"))
    servers, links = await every_page(api, "/v1/servers", site="site-c")
    assert [s["name"] for s in servers] == ["sepm-c1", "sepm-c2", "sepm-c3"]
    assert all("site=site-c" in link for link in links)  # the filter follows the cursor


async def test_tokens_and_tasks_come_page_by_page(embedded):
    api = embedded.api
    for n in range(3):
        created = await api.post("/v1/tokens", json={"name": f"ci-{n}", "role": "viewer"})
        assert created.status_code == 201, created.text
    tokens, _ = await every_page(api, "/v1/tokens")
    # Made at the same instant (a manual clock): each once, whatever the order among equals.
    assert sorted(t["name"] for t in tokens) == ["ci-0", "ci-1", "ci-2"]
    assert all("token" not in t for t in tokens)
    tasks, _ = await every_page(api, "/v1/tasks", status="all")
    assert tasks == []


async def test_a_cursor_the_listing_did_not_give_is_refused(embedded):
    for path in ("/v1/sites", "/v1/servers", "/v1/tokens", "/v1/tasks"):
        answer = await embedded.api.get(path, params={"cursor": "bm90LWEtY3Vyc29y"})
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["code"] == "invalid_cursor"
