"""A stored bundle pre-flighted for many sites in one request (campaign creation): the same
verdict per site as one request per site, the bundle opened once, each site its own sealed
copy, and nothing stored when any site is refused."""

from __future__ import annotations

import logging
import sqlite3
from datetime import timedelta
from typing import Any

import pytest

from certificates.domain import validation
from tests.integration.certificates.test_bundle_api import Stack, stack
from tests.support.pki import IssuedCertificate, TestCA

pytestmark = pytest.mark.integration
__all__ = ["stack"]

PASSWORD = "Wb4-one-bundle-many-sites"


@pytest.fixture(scope="module")
def wildcard() -> IssuedCertificate:
    return TestCA.root().intermediate().issue(["*.corp.example"], days=100)


async def stored(stack: Stack, cert: IssuedCertificate) -> tuple[str, dict[str, Any]]:
    upload = {**cert.upload("pkcs12", PASSWORD), "site": ""}
    response = await stack.http.post("/internal/v1/bundles", json=upload)
    assert response.status_code == 201, response.text
    return response.json()["bundle_ref"], upload


def use(site: str, *names: str, min_days: int = 30) -> dict[str, Any]:
    return {"site": site, "hostnames": list(names), "min_validity_days": min_days}


def described(answer: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in answer.items() if k not in ("bundle_ref", "site")}


async def test_a_batch_answers_what_one_request_per_site_answers(
    stack: Stack, wildcard: IssuedCertificate
) -> None:
    ref, _ = await stored(stack, wildcard)
    uses = [use(f"site-{i}", f"sepm-{i}.corp.example", "sepm.corp.example") for i in range(4)]
    batch = await stack.http.post(f"/internal/v1/bundles/{ref}/uses/batch", json={"uses": uses})
    assert batch.status_code == 201, batch.text
    answers = batch.json()["uses"]
    assert [a["site"] for a in answers] == [u["site"] for u in uses]
    one = await stack.http.post(f"/internal/v1/bundles/{ref}/uses", json=uses[2])
    assert described(answers[2]) == described(one.json())
    assert answers[0]["fingerprint_sha256"] == wildcard.fingerprint
    # Each site has a copy of its own (a rotation's end purges only its copy), sealed at rest.
    copies = [a["bundle_ref"] for a in answers]
    assert len(set(copies)) == 4 and ref not in copies
    assert {r[0] for r in stack.rows()} == {ref, one.json()["bundle_ref"], *copies}
    assert {r[1] for r in stack.rows() if r[0] in copies} == {u["site"] for u in uses}
    for copy in copies:
        again = await stack.http.post(f"/internal/v1/bundles/{copy}/uses", json=uses[0])
        assert again.status_code == 201, again.text


async def test_a_refusal_names_the_first_refused_site_and_keeps_nothing(
    stack: Stack, wildcard: IssuedCertificate
) -> None:
    ref, _ = await stored(stack, wildcard)
    uses = [
        use("site-a", "sepm-a.corp.example"),
        use("site-b", "sepm-b.other.example"),
        use("site-c", "sepm-c.corp.example"),
        use("site-d", "sepm-d.corp.example", min_days=200),
    ]
    batch = await stack.http.post(f"/internal/v1/bundles/{ref}/uses/batch", json={"uses": uses})
    assert batch.status_code == 422, batch.text
    assert batch.headers["content-type"] == "application/problem+json"
    problem = batch.json()
    assert (problem["code"], problem["site"]) == ("san_missing", "site-b")
    assert problem["detail"].startswith("site 'site-b': ")
    # Every refused site, in request order, with the verdict its own pre-flight gives.
    singles = {
        u["site"]: (await stack.http.post(f"/internal/v1/bundles/{ref}/uses", json=u)).json()
        for u in uses
    }
    assert [r["site"] for r in problem["refusals"]] == ["site-b", "site-d"]
    for refusal in problem["refusals"]:
        alone = singles[refusal["site"]]
        assert {k: refusal[k] for k in ("code", "detail")} == {
            k: alone[k] for k in ("code", "detail")
        }
    assert problem["refusals"][0]["missing"] == ["sepm-b.other.example"]
    # The accepted sites got no copy from the refused batch (only from their single requests).
    assert len(stack.rows()) == 1 + 2


async def test_the_bundle_is_opened_once_for_the_whole_batch(
    stack: Stack, wildcard: IssuedCertificate, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref, _ = await stored(stack, wildcard)
    opened = []
    real = validation.open_bundle

    def spy(upload: Any) -> Any:
        opened.append(upload.format)
        return real(upload)

    monkeypatch.setattr(validation, "open_bundle", spy)
    uses = [use(f"site-{i:02d}", f"sepm-{i:02d}.corp.example") for i in range(25)]
    batch = await stack.http.post(f"/internal/v1/bundles/{ref}/uses/batch", json={"uses": uses})
    assert batch.status_code == 201, batch.text
    assert opened == ["pkcs12"]
    assert len(batch.json()["uses"]) == 25


async def test_nothing_secret_in_the_answers_the_logs_or_the_copies(
    stack: Stack, wildcard: IssuedCertificate, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ref, upload = await stored(stack, wildcard)
    good = [use("site-a", "sepm-a.corp.example"), use("site-b", "sepm-b.corp.example")]
    accepted = await stack.http.post(f"/internal/v1/bundles/{ref}/uses/batch", json={"uses": good})
    refused = await stack.http.post(
        f"/internal/v1/bundles/{ref}/uses/batch",
        json={"uses": [*good, use("site-x", "x.other.example")]},
    )
    assert (accepted.status_code, refused.status_code) == (201, 422)
    everything = caplog.text + accepted.text + refused.text
    for secret in (PASSWORD, upload["data_b64"][:40], upload["data_b64"][-60:-4]):
        assert secret not in everything
    with sqlite3.connect(stack.db) as conn:
        sealed = b"".join(bytes(r[0]) for r in conn.execute("SELECT sealed FROM bundles"))
    assert PASSWORD.encode() not in sealed and PASSWORD.encode().hex().encode() not in sealed


async def test_unknown_bundles_expired_bundles_and_bad_requests(
    stack: Stack, wildcard: IssuedCertificate
) -> None:
    ref, _ = await stored(stack, wildcard)
    uses = [use("site-a", "sepm-a.corp.example"), use("site-b", "sepm-b.corp.example")]
    gone = await stack.http.post("/internal/v1/bundles/bnd_nothere/uses/batch", json={"uses": uses})
    assert gone.status_code == 404 and gone.json()["code"] == "bundle_not_found"
    empty = await stack.http.post(f"/internal/v1/bundles/{ref}/uses/batch", json={"uses": []})
    assert empty.status_code == 422
    # Checked against today: every site is refused once the bundle nears its expiry.
    stack.clock.advance(timedelta(days=80).total_seconds())
    late = await stack.http.post(f"/internal/v1/bundles/{ref}/uses/batch", json={"uses": uses})
    assert late.status_code == 422 and late.json()["code"] == "expiring_soon"
    assert [r["site"] for r in late.json()["refusals"]] == ["site-a", "site-b"]
    assert [r[0] for r in stack.rows()] == [ref]
