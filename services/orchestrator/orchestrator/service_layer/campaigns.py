"""Campaigns as the API creates them: the plan resolved into waves (by tag, replication farm
and window), every site's certificate pre-flighted for that site, then the first tick."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError

from orchestrator.adapters import campaign_tables as table
from orchestrator.adapters.clients import CertificatesClient, RegisteredBundle
from orchestrator.domain import campaign as domain
from orchestrator.domain import campaign_plan
from orchestrator.domain.campaign import CampaignState
from orchestrator.domain.state import MaintenanceWindow, RotationOptions
from orchestrator.domain.window import InvalidWindowError, check_window
from orchestrator.service_layer import preflight, retention, site_topology
from orchestrator.service_layer.campaign_driver import tick
from orchestrator.service_layer.campaign_records import get_campaign
from orchestrator.service_layer.deps import Database
from orchestrator.service_layer.errors import ConflictError, InputRejectedError
from orchestrator.service_layer.request_keys import request_fingerprint, same_request
from orchestrator.service_layer.rotation_options import with_operator_defaults
from orchestrator.service_layer.rotations import RotationStarter
from orchestrator.settings import Settings


@dataclass(frozen=True)
class CampaignRequest:
    name: str
    plan: campaign_plan.PlanAsked
    # site -> upload; a site left out uses `default_upload` (its SANs are checked per site).
    uploads: dict[str, preflight.Certificate]
    default_upload: preflight.Certificate | None
    options: RotationOptions
    max_concurrent: int
    max_failures: int
    approve_each_wave: bool
    change_id: str | None
    # Every wave's window (None: any time), a wave's own (1-based) and a site's own, which
    # overrides the one the inventory gives the site.
    window: MaintenanceWindow | None = None
    wave_windows: dict[int, MaintenanceWindow] = field(default_factory=dict)
    site_windows: dict[str, MaintenanceWindow] = field(default_factory=dict)


async def create_campaign(
    request: CampaignRequest,
    *,
    starter: RotationStarter,
    by: str,
    idempotency_key: str | None,
    body: dict[str, Any],
    principal: dict[str, str] | None = None,
) -> tuple[CampaignState, bool]:
    """Pre-flight every site's certificate, then store the campaign; (campaign, created)."""
    db, clock, settings, certificates = (
        starter.db, starter.clock, starter.settings, starter.certificates
    )  # fmt: skip
    fingerprint = request_fingerprint(settings, body)
    if idempotency_key:
        existing = await _by_key(db, settings, idempotency_key, body)
        if existing is not None:
            return existing, False
    async with db() as uow:
        tagged = await site_topology.sites_tagged(
            uow.session, campaign_plan.tags_asked(request.plan)
        )
    try:
        waves = campaign_plan.resolve_plan(request.plan, tagged)
        ordered = campaign_plan.check_waves(waves)
    except campaign_plan.UnknownTagError as exc:
        raise InputRejectedError(str(exc), code="unknown_tag") from None
    except campaign_plan.InvalidPlanError as exc:
        raise InputRejectedError(str(exc), code="invalid_plan") from None
    unknown = sorted(set(request.uploads) - set(ordered))
    if unknown:
        raise InputRejectedError(
            f"certificates given for sites not in the plan: {', '.join(unknown)}",
            code="invalid_plan",
        )
    farms: dict[str, str] = {}
    targets = {}
    site_windows = dict(request.site_windows)
    partners: dict[str, set[str]] = {}
    async with db() as uow:
        for site in ordered:
            targets[site] = await site_topology.site_target(uow.session, site)
            graph = await site_topology.replication_graph(uow.session, site)
            farms[site] = min(graph)
            partners[site] = graph[site]
            own = await site_topology.site_window(uow.session, site)
            if site not in site_windows and own is not None:
                site_windows[site] = own
    waves = campaign_plan.farm_order(waves, farms, partners)
    wave_windows = _wave_windows(request, waves, ordered)
    for where, window in [*site_windows.items(), *enumerate(wave_windows, 1)]:
        try:
            if window is not None:
                check_window(window, clock.now())
        except InvalidWindowError as exc:
            named = f"site {where!r}" if isinstance(where, str) else f"wave {where}"
            raise InputRejectedError(f"{named}: {exc}", code="invalid_window") from None
    bundles = await _preflight_all(request, ordered, targets, starter.preflight)
    options = with_operator_defaults(request.options, settings)
    state = domain.new_campaign(
        campaign_id=str(uuid.uuid4()), name=request.name, waves=waves, farms=farms,
        bundles=bundles, max_concurrent=request.max_concurrent,
        max_failures=request.max_failures, approve_each_wave=request.approve_each_wave,
        options=options.model_dump(mode="json"), change_id=request.change_id, by=by,
        now=clock.now(), principal=principal,
        targets={"plan": request.plan.model_dump(mode="json", exclude_none=True),
                 "tags": tagged},
        site_windows=site_windows, wave_windows=wave_windows,
    )  # fmt: skip
    try:
        async with db() as uow:
            await table.add(uow.session, state, idempotency_key, fingerprint)
            await uow.commit()
    except IntegrityError:
        # A delivery of the same request created the campaign meanwhile, with its own copies.
        await _discard_copies(certificates, [b["bundle_ref"] for b in bundles.values()])
        if idempotency_key:
            existing = await _by_key(db, settings, idempotency_key, body)
            if existing is not None:
                return existing, False
        raise
    # A site's turn may come weeks later: its bundle must not expire meanwhile.
    await retention.hold_now(certificates, [b["bundle_ref"] for b in bundles.values()])
    await tick(state.campaign_id, starter=starter)
    return await get_campaign(state.campaign_id, db=db), True


# Pre-flights in flight at once: each is a round trip to the certificates service and key
# derivation there; one after another, 200 sites held POST /v1/campaigns for minutes.
PREFLIGHT_CONCURRENCY = 8


async def _preflight_all(
    request: CampaignRequest,
    ordered: list[str],
    targets: dict[str, Any],
    checks: preflight.Preflight,
) -> dict[str, dict[str, Any]]:
    """Every site's certificate pre-flighted for that site, a few at once, and the sites that
    name one uploaded bundle in one request (the bundle opened once, not once a site); a
    refusal names the first refused site in plan order, as a serial pre-flight would have."""
    uploads = {}
    # Sites after the first one without a certificate were never pre-flighted: still not.
    for site in ordered:
        upload = request.uploads.get(site, request.default_upload)
        if upload is None:
            break
        uploads[site] = upload
    by_bundle: dict[preflight.BundleReference, list[str]] = {}
    for site, upload in uploads.items():
        if isinstance(upload, preflight.BundleReference):
            by_bundle.setdefault(upload, []).append(site)
    gate = asyncio.Semaphore(PREFLIGHT_CONCURRENCY)

    async def one(site: str) -> dict[str, RegisteredBundle]:
        async with gate:
            names = preflight.site_hostnames(targets[site])
            return {site: await checks.for_site(site, uploads[site], names)}

    async def shared(reference: preflight.BundleReference) -> dict[str, RegisteredBundle]:
        names = {site: preflight.site_hostnames(targets[site]) for site in by_bundle[reference]}
        async with gate:
            return await checks.for_sites(reference, names)

    inline = [site for site in uploads if not isinstance(uploads[site], preflight.BundleReference)]
    firsts = [*inline, *(sites[0] for sites in by_bundle.values())]
    outcomes = await asyncio.gather(
        *(one(site) for site in inline), *(shared(ref) for ref in by_bundle),
        return_exceptions=True,
    )  # fmt: skip
    done: dict[str, RegisteredBundle] = {}
    failed: dict[str, BaseException] = {}
    for first, outcome in zip(firsts, outcomes, strict=True):
        if isinstance(outcome, preflight.SiteRejectedError):
            failed[outcome.site] = outcome
        elif isinstance(outcome, BaseException):
            failed[first] = outcome
        else:
            done.update(outcome)
    try:
        _refuse_first(uploads, failed)
        if len(uploads) < len(ordered):
            missing = ordered[len(uploads)]
            raise InputRejectedError(
                f"no certificate for site {missing!r}: give one in certificates or a default",
                code="missing_certificate",
            )
    except BaseException:
        # The campaign is not created: the copies made for the sites that passed go too.
        await _discard_copies(checks.certificates, [copy.bundle_ref for copy in done.values()])
        raise
    return {site: _recorded(done[site]) for site in uploads}


def _refuse_first(uploads: dict[str, Any], failed: dict[str, BaseException]) -> None:
    for site in uploads:
        # A site of a refused shared bundle has no outcome: its bundle's first refusal has.
        refusal = failed.get(site)
        if isinstance(refusal, InputRejectedError):
            raise InputRejectedError(f"site {site!r}: {refusal.detail}", code=refusal.code)
        if refusal is not None:
            raise refusal


async def _discard_copies(certificates: CertificatesClient, refs: list[str]) -> None:
    # Best effort: a copy nobody holds expires with the store's TTL.
    await asyncio.gather(*(certificates.discard_bundle(ref) for ref in refs))


def _recorded(b: RegisteredBundle) -> dict[str, Any]:
    return {
        "bundle_ref": b.bundle_ref, "fingerprint_sha256": b.fingerprint_sha256,
        "subject": b.subject, "sans": b.sans,
        "not_after": b.not_after.isoformat() if b.not_after else None,
        "certificate_pem": b.certificate_pem,
    }  # fmt: skip


def _wave_windows(
    request: CampaignRequest, waves: list[list[str]], ordered: list[str]
) -> list[MaintenanceWindow | None]:
    beyond = sorted(n for n in request.wave_windows if not 1 <= n <= len(waves))
    strangers = sorted(set(request.site_windows) - set(ordered))
    if beyond or strangers:
        raise InputRejectedError(
            f"windows given for waves the plan does not have ({beyond}; it has {len(waves)}) "
            f"or sites not in it ({strangers})",
            code="invalid_plan",
        )
    return [request.wave_windows.get(n, request.window) for n in range(1, len(waves) + 1)]


async def _by_key(
    db: Database, settings: Settings, key: str, body: dict[str, Any]
) -> CampaignState | None:
    async with db() as uow:
        found = await table.by_key(uow.session, key)
    if found is None:
        return None
    campaign_id, body_hash = found
    if not same_request(settings, body, body_hash):
        raise ConflictError(
            f"Idempotency-Key {key!r} was used for a different request (campaign "
            f"{campaign_id}); use a new key for a new campaign",
            code="idempotency_key_reused",
        )
    return await get_campaign(campaign_id, db=db)
