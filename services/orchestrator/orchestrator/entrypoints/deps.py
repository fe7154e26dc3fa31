"""What every route depends on: the service's wiring, and the caller's role (a bearer token).

A route declares its least role by the type of one parameter (`who: Operator`); the check reads
the token before the body is used, and answers 401 / 403 as problem+json.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from certrotate_shared.http import ProblemError
from orchestrator.adapters import auth_failure_rows
from orchestrator.entrypoints.conditional import AnswerCache
from orchestrator.service_layer import tokens
from orchestrator.service_layer.auth_failures import FailedAuthentications, RecordFailure
from orchestrator.service_layer.deps import Deps
from orchestrator.service_layer.tokens import Principal, Role
from orchestrator.service_layer.verified_tokens import VerifiedTokens

RoleCheck = Callable[[Role], Callable[..., Awaitable[Principal]]]

# Ids and positions are 64-bit integers in the database: a larger one names nothing.
MAX_ID = 2**63 - 1


# Dependencies are `async def`: FastAPI runs a plain `def` one in a worker thread, two thread
# hand-offs per request for a dict lookup (a sixth of a poll's CPU when measured).
async def get_deps(request: Request) -> Deps:
    deps: Deps = request.app.state.deps
    return deps


AppDeps = Annotated[Deps, Depends(get_deps)]


async def get_answers(request: Request) -> AnswerCache:
    answers: AnswerCache = request.app.state.answers
    return answers


# Views already serialized, by entity tag (conditional.py).
Answers = Annotated[AnswerCache, Depends(get_answers)]


def role(needed: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets through a token whose role is `needed` or above."""

    async def check(
        request: Request, deps: AppDeps, authorization: Annotated[str | None, Header()] = None
    ) -> Principal:
        # Without a transaction, as a poll: the token is one SELECT, and a failure's record
        # commits by itself although the request ends in an error.
        async with read_sessions(request, deps)() as session:
            return await _authenticate(request, deps, session, authorization, needed)

    return check


@dataclass(frozen=True)
class Reading:
    """A viewer's read: who reads, and the session the token was checked in, to read on with."""

    who: Principal
    session: AsyncSession


async def _reading(
    request: Request, deps: AppDeps, authorization: Annotated[str | None, Header()] = None
) -> AsyncIterator[Reading]:
    # One connection for the token and the read: a poll costs one checkout, and no transaction.
    async with read_sessions(request, deps)() as session:
        who = await _authenticate(request, deps, session, authorization, "viewer")
        yield Reading(who, session)


def read_sessions(request: Request, deps: Deps) -> async_sessionmaker[AsyncSession]:
    """Sessions without a transaction (each statement its own snapshot), for polled reads: no
    BEGIN and ROLLBACK round trips, and the views already cope with a saga that moves on
    between two statements. Made once per engine (the runtime makes its engine on start)."""
    engine = deps.rt.engine
    made: tuple[object, async_sessionmaker[AsyncSession]] | None = getattr(
        request.app.state, "read_sessions", None
    )
    if made is None or made[0] is not engine:
        autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        made = (engine, async_sessionmaker(autocommit, expire_on_commit=False))
        request.app.state.read_sessions = made
    return made[1]


async def _authenticate(
    request: Request, deps: Deps, session: AsyncSession, authorization: str | None, needed: Role
) -> Principal:
    refuse_a_guesser(request, deps)
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        # No token is a client to fix, not a guess: it is not counted.
        raise ProblemError(
            401, "Unauthorized", "send Authorization: Bearer <API token>", code="token_required"
        )
    principal = await identify(request, deps, session, token.strip())
    if principal is None:
        raise ProblemError(
            401, "Unauthorized", "unknown, revoked or expired API token", code="token_invalid"
        )
    if not principal.may(needed):
        raise ProblemError(
            403,
            "Forbidden",
            f"this action needs the {needed} role; token {principal.name!r} has {principal.role}",
            code="role_required",
        )
    return principal


def refuse_a_guesser(request: Request, deps: Deps) -> None:
    """429 for an address with too many failed authentications (decided in memory)."""
    failures = deps.failed_logins
    assert failures is not None
    wait = failures.retry_after(_address(request), deps.wall_clock())
    if wait is not None:
        raise ProblemError(
            429, "Too many failed authentications",
            f"{failures.limit} requests from this address failed authentication within "
            f"{failures.window:g} s; try again in {wait} s",
            code="too_many_failed_authentications", headers={"Retry-After": str(wait)},
        )  # fmt: skip


async def identify(
    request: Request, deps: Deps, session: AsyncSession, token: str
) -> Principal | None:
    """Who `token` is, verified a moment ago or looked up; None (a failure counted against the
    caller's address, in `session`, which must have no transaction) if no one is. The API and
    the dashboard's sign-in both check tokens here, so both count against one limit."""
    verified: VerifiedTokens = request.app.state.verified_tokens
    now = deps.clock.now()
    principal = verified.get(token, wall=deps.wall_clock(), now=now)
    if principal is None:
        principal = await tokens.authenticate(
            session, token, admin_token=deps.settings.admin_token.get_secret_value(), now=now
        )
        if principal is not None:
            verified.put(token, principal, wall=deps.wall_clock())
    if principal is None:
        failures = deps.failed_logins
        assert failures is not None
        await failures.failed(
            _address(request), deps.wall_clock(), _shared_count(session, failures)
        )
    return principal


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _shared_count(session: AsyncSession, failures: FailedAuthentications) -> RecordFailure:
    """Where this failure is counted with every replica's: the request's own session."""

    async def record(address: str, at: float) -> list[float]:
        return await auth_failure_rows.record_failure(
            session, address, at, window=failures.window, newest=failures.limit
        )

    return record


Viewer = Annotated[Principal, Depends(role("viewer"))]
# A viewer's read in the transaction that checked the token (the hot polled reads).
ViewerReading = Annotated[Reading, Depends(_reading)]
Operator = Annotated[Principal, Depends(role("operator"))]
Approver = Annotated[Principal, Depends(role("approver"))]
Admin = Annotated[Principal, Depends(role("admin"))]
