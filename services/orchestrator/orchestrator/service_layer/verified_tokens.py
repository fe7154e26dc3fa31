"""API tokens this replica verified a moment ago, so that a poll does not cost a statement.

A dashboard or an ITSM integration polls a rotation every few seconds with the same token;
looking the token up in the database on every poll was a third of a conditional read's work.
A verified token is kept for `ttl` real seconds (the epoch clock the failure count shares; a
clock set back ends what was kept rather than stretching it). What that trades, stated in the
configuration reference: a token revoked through this replica is refused at once (the
revocation clears this cache), one revoked through another replica is refused by this one
within `ttl`. An expiry is checked on every request (against the saga clock), never cached
past. Only successes are kept (failures are counted per address instead, auth_failures.py),
and only the token's SHA-256, never the token.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

from orchestrator.service_layer.tokens import Principal, token_hash

# Tokens kept at most: many clients each with its token must not grow memory without bound.
MAX_TOKENS = 10_000


class VerifiedTokens:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._kept: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    def get(self, token: str, *, wall: float, now: datetime) -> Principal | None:
        """Who `token` is if it was verified within `ttl` and has not expired since."""
        if self.ttl <= 0:
            return None
        key = token_hash(token)
        kept = self._kept.get(key)
        if kept is None:
            return None
        verified_at, principal = kept
        if not 0 <= wall - verified_at < self.ttl or (
            principal.expires_at is not None and principal.expires_at <= now
        ):
            del self._kept[key]
            return None
        return principal

    def put(self, token: str, principal: Principal, *, wall: float) -> None:
        if self.ttl <= 0:
            return
        key = token_hash(token)
        self._kept[key] = (wall, principal)
        self._kept.move_to_end(key)
        while len(self._kept) > MAX_TOKENS:
            self._kept.popitem(last=False)

    def forget_all(self) -> None:
        """A token was revoked here: verify every token again from now on."""
        self._kept.clear()
