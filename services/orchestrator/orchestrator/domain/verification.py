"""What the verification steps report must be true: nothing is taken as done that did not happen.

- A disable that changed no group is a failure: every SEPM has at least one group.
- A restore must cover every group and location whose original value step 2 recorded.
- The first recorded originals win: a second disable (after the gate found verification back
  on) sees our own "off" as the current value and must not overwrite what was there before.
"""

from __future__ import annotations

from certrotate_shared.messages.certificates import GroupVerification, LocationVerification


def disable_problem(groups: list[GroupVerification]) -> str | None:
    if not groups:
        return "the disable reported no group at all (every SEPM has at least one group)"
    return None


def restore_problem(
    recorded: list[GroupVerification], restored: list[GroupVerification]
) -> str | None:
    """Why a restore is not a completion, or None when it covers every recorded location."""
    done = {(g.group_id, loc) for g in restored for loc in g.original_values}
    done_groups = {g.group_id for g in restored}
    missing = [
        g.full_path_name
        for g in recorded
        if g.group_id not in done_groups
        or any((g.group_id, loc) not in done for loc in g.original_values)
    ]
    if recorded and not restored:
        return f"the restore reported no group, but step 2 changed {len(recorded)}"
    if missing:
        return f"the restore did not cover {len(missing)} recorded groups: {', '.join(missing)}"
    return None


def merge_disabled(
    recorded: list[GroupVerification], again: list[GroupVerification]
) -> list[GroupVerification]:
    """Recorded originals kept, new groups and locations added, each group's serial the newest."""
    by_id = {g.group_id: g for g in recorded}
    merged: list[GroupVerification] = []
    for group in again:
        first = by_id.pop(group.group_id, None)
        originals = {**group.original_values, **(first.original_values if first else {})}
        merged.append(group.model_copy(update={"original_values": originals}))
    # Groups the second pass did not report keep their first record (and their serial).
    return [*recorded_in_order(recorded, by_id), *merged]


def recorded_in_order(
    recorded: list[GroupVerification], remaining: dict[str, GroupVerification]
) -> list[GroupVerification]:
    return [g for g in recorded if g.group_id in remaining]


def describe_enabled(enabled: list[LocationVerification]) -> list[str]:
    """Each location found verifying, as "group path (location id)"."""
    return sorted({f"{loc.full_path_name} ({loc.location_id})" for loc in enabled})
