"""What SEPM's replication status says about each partner, and what we decide from it.

Which partnerships a saga broke (and so must restore) is decided here:
- a listed partner that SEPM still shows is deleted;
- a listed partner SEPM no longer shows counts as broken by this saga only if this saga
  recorded that it set out to delete it (the record is written *before* the host operation, so
  a crash between the deletion and our commit cannot lose it);
- otherwise somebody else removed it, before or during the saga, and it is not ours to re-add:
  re-adding a partner overwrites the partner's database with ours (the vendor procedure), which nobody
  asked for.

Both sides of a pair, in this order (partnerships are configured per site: the vendor procedure):
- Break: this site (the one being rotated) deletes the partner, then the partner deletes this
  site. Either order stops replication; ours first, because it is the side we can observe.
- Restore: this site re-adds the partner first, replication runs and reaches SUCCEEDED, and
  only then does the partner re-add this site. Re-adding overwrites the partner's database
  with the re-adding site's, so the first re-add decides whose data survives, and it must be
  this site's: it is the database the saga changed and restored (verification off, then on,
  with the policy serials its clients were watched to), and the other way round would hand
  this site's clients the partner's copy of their groups, with other serials, after the fact.
  The price, stated in the operator's task: changes made on the partner during the rotation
  are lost. By the time the partner re-adds, its database holds this site's, so its
  overwrite changes nothing. A SEPM that re-adds both sides at once leaves the partner's side
  already done, which each driver treats as done.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

SUCCEEDED = "SUCCEEDED"
# Terminal failures of a replication run (status codes of SEPM's REST definition).
FAILED_CODES = frozenset({"FAILED_CONNECT", "CANCELED"})


@dataclass(frozen=True)
class PartnerObservation:
    """One row of GET /replication/status, replicationPartnerStatusList."""

    name: str
    status_code: str
    last_run_ms: int | None = None
    last_success_ms: int | None = None


def observe_partners(status: dict[str, Any]) -> dict[str, PartnerObservation]:
    """The partners SEPM lists for the site, by name."""
    rows = (status.get("replicationStatus") or {}).get("replicationPartnerStatusList") or []
    return {
        str(row["name"]): PartnerObservation(
            name=str(row["name"]),
            status_code=str(row.get("status_code") or ""),
            last_run_ms=_int_or_none(row.get("lastRunTime")),
            last_success_ms=_int_or_none(row.get("lastSuccessfulRunTime")),
        )
        for row in rows
        if row.get("name")
    }


class BreakDecision(Enum):
    DELETE = "delete"  # SEPM lists it: delete it, and remember that we did
    OURS = "ours"  # gone, and this saga set out to delete it: report it as broken by us
    NOT_OURS = "not_ours"  # gone, and not by this saga: leave it out of what we restore


def decide_break(*, present: bool, broken_by_this_saga: bool) -> BreakDecision:
    """What to do about one partner the orchestrator asked us to break."""
    if present:
        return BreakDecision.DELETE
    return BreakDecision.OURS if broken_by_this_saga else BreakDecision.NOT_OURS


@dataclass(frozen=True)
class Baseline:
    """The partner's run times just before we asked for a run; older results do not count."""

    last_run_ms: int | None = None
    last_success_ms: int | None = None

    @classmethod
    def of(cls, observation: PartnerObservation | None) -> Baseline:
        if observation is None:
            return cls()
        return cls(observation.last_run_ms, observation.last_success_ms)


@dataclass(frozen=True)
class RestoreVerdict:
    done: bool
    succeeded: bool = False
    status_code: str | None = None
    reason: str = ""


WAITING = RestoreVerdict(done=False)


def judge_restore(
    partner: str,
    observation: PartnerObservation | None,
    baseline: Baseline,
    *,
    timed_out: bool,
    timeout_s: float,
) -> RestoreVerdict:
    """Has the run we asked for with this partner finished, and how?"""
    if observation is None:
        return RestoreVerdict(
            done=True,
            reason=f"{partner} is no longer a replication partner; somebody removed it again",
        )
    code = observation.status_code
    if code == SUCCEEDED and _later(observation.last_success_ms, baseline.last_success_ms):
        return RestoreVerdict(done=True, succeeded=True, status_code=code)
    if code in FAILED_CODES and _later(observation.last_run_ms, baseline.last_run_ms):
        return RestoreVerdict(
            done=True, status_code=code, reason=f"replication with {partner} ended {code}"
        )
    if timed_out:
        return RestoreVerdict(
            done=True,
            status_code=code or None,
            reason=(
                f"replication with {partner} did not reach SUCCEEDED within {timeout_s:g} s "
                f"(last status {code or 'unknown'})"
            ),
        )
    return WAITING


def poll_delay(polls: int, *, initial_s: float, maximum_s: float) -> float:
    """Exponential back-off between status polls, in clock seconds."""
    return float(min(maximum_s, initial_s * 2 ** min(polls, 30)))


def _later(value: int | None, baseline: int | None) -> bool:
    return value is not None and (baseline is None or value > baseline)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)
