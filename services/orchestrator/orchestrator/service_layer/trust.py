"""A site's trust set across rotations: the new certificate joins it when a rotation completes,
the one it replaced stays until the next rotation completes (a pinned leaf keeps working)."""

from __future__ import annotations

import binascii
import hashlib
import ssl

from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.adapters import site_locks, site_trust
from orchestrator.domain.state import SagaState


def pem_fingerprint(pem: str) -> str | None:
    """sha256 (lowercase hex) of a PEM certificate's DER, as the TLS probes report it."""
    try:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.strip())).hexdigest()
    except (ValueError, binascii.Error):
        return None


async def rotation_ended(session: AsyncSession, state: SagaState) -> None:
    """In the transaction that makes a rotation terminal: free its sites, carry its trust."""
    # Only the first terminal transition held the locks (late events arrive after it).
    ended_now = await site_locks.release(session, state.saga_id)
    if ended_now and state.status == "completed" and state.swap_done:
        await _trust_new_certificate(session, state)


async def _trust_new_certificate(session: AsyncSession, state: SagaState) -> None:
    stored = await site_trust.read(session, state.site)
    if stored is None:
        return  # the site was removed meanwhile
    trusted, superseded = stored
    retired = set(superseded)
    kept = [pem for pem in trusted if pem_fingerprint(pem) not in retired]
    # What the rotation trusted beyond the site's set: the new certificate.
    added = [pem for pem in state.target.trusted_certificates_pem if pem not in trusted]
    replaced = sorted(
        {s.fingerprint_before for s in state.servers if s.fingerprint_before}
        - {state.certificate.fingerprint_sha256}
    )
    await site_trust.write(session, state.site, kept + added, replaced)
