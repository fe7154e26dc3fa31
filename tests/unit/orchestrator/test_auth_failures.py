"""The failed-authentication limit as replicas enforce it (service_layer/auth_failures.py),
with the shared database stood in by a list: the bound on attempts per window with N replicas,
and what a replica does when the database cannot record a failure."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from orchestrator.service_layer.auth_failures import FailedAuthentications

LIMIT, WINDOW = 10, 60.0


class SharedCount:
    """The failures table every replica writes: (address, instant) rows."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float]] = []

    async def record(self, address: str, at: float) -> list[float]:
        earlier = sorted(
            (t for a, t in self.rows if a == address and t > at - WINDOW), reverse=True
        )
        self.rows.append((address, at))
        return earlier[:LIMIT]


async def guess(
    replicas: list[FailedAuthentications],
    shared: SharedCount | None,
    *,
    seconds: int,
    address: str = "10.6.6.6",
) -> list[float]:
    """A guesser trying a wrong token once a second, on each replica in turn; the instants of
    the guesses that were answered 401 (the ones not refused)."""
    answered = []
    for second in range(seconds):
        replica = replicas[second % len(replicas)]
        if replica.retry_after(address, float(second)) is None:
            await replica.failed(address, float(second), shared.record if shared else None)
            answered.append(float(second))
    return answered


def most_in_a_window(instants: list[float]) -> int:
    return max(sum(1 for t in instants if start <= t < start + WINDOW) for start in instants)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
async def test_n_replicas_sharing_the_count_let_through_at_most_limit_plus_n_minus_1(n):
    replicas = [FailedAuthentications(limit=LIMIT, window=WINDOW) for _ in range(n)]
    answered = await guess(replicas, SharedCount(), seconds=int(5 * WINDOW))
    assert most_in_a_window(answered[: LIMIT + n]) == LIMIT + n - 1
    # And in every window of a steady guesser over five windows, not only the first.
    assert most_in_a_window(answered) <= LIMIT + n - 1


async def test_replicas_counting_alone_let_through_n_times_the_limit():
    """What the shared count fixes: without it, each replica counts its own."""
    replicas = [FailedAuthentications(limit=LIMIT, window=WINDOW) for _ in range(3)]
    answered = await guess(replicas, None, seconds=int(WINDOW) - 1)
    assert len(answered) == 3 * LIMIT


async def test_retry_after_is_when_fewer_than_limit_failures_are_left_in_the_window():
    shared = SharedCount()
    first, second = (FailedAuthentications(limit=LIMIT, window=WINDOW) for _ in range(2))
    for t in range(LIMIT):  # all on the first replica, one a second
        await first.failed("a", float(t), shared.record)
    assert first.retry_after("a", float(LIMIT)) == WINDOW - LIMIT
    assert second.retry_after("a", float(LIMIT)) is None  # it has not heard of them yet
    await second.failed("a", float(LIMIT), shared.record)
    # The first of the last LIMIT failures (at 1 s) leaves the window at 61 s.
    assert second.retry_after("a", float(LIMIT)) == 1 + WINDOW - LIMIT
    assert second.retry_after("a", 1 + WINDOW) is None
    assert second.retry_after("b", float(LIMIT)) is None


async def test_a_failure_the_database_cannot_record_is_counted_on_this_replica(caplog):
    async def down(address: str, at: float) -> list[float]:
        raise OperationalError("INSERT INTO auth_failures", {}, ConnectionResetError())

    replica = FailedAuthentications(limit=LIMIT, window=WINDOW)
    for t in range(LIMIT):
        assert replica.retry_after("10.6.6.6", float(t)) is None
        await replica.failed("10.6.6.6", float(t), down)
    assert replica.retry_after("10.6.6.6", float(LIMIT)) == WINDOW - LIMIT
    assert "10.6.6.6" in caplog.text and "OperationalError" in caplog.text
