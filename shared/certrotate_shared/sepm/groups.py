"""SEPM's group tree and who owns each group's policy.

Why only owning groups are changed: SEPM's REST definition documents `policyInheritanceEnabled`
("whether this group's policy is inherited from its parent") and `defaultLocationId` ("if this
group inherits from its parent, it's its non-inherit parent's default location"), and
GET /groups/{id}/locations of an inheriting group lists its non-inheriting parent's location
ids (PSSymantecSEPM's Get-SEPMLocation shows one location id under four groups). Changing
"the child's" location settings therefore changes the parent's policy (or is refused: to verify
on a real SEPM). So the secure-communications setting is changed on groups that own their
policy (`policyInheritanceEnabled` false, and each domain's root, which has no parent to inherit
from), while the clients of every group are watched: an inheriting group's clients get their
owner's policy, so they must reach the owner's new serial.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from certrotate_shared.sepm.answers import malformed, text_field
from certrotate_shared.sepm.api import SepmError

_SEPARATOR = "\\"


@dataclass(frozen=True)
class SepmGroup:
    """The fields of a group that rotating the certificate relies on."""

    id: str
    full_path_name: str
    policy_serial: str
    inherits: bool
    domain_id: str

    @property
    def is_root(self) -> bool:
        return _SEPARATOR not in self.full_path_name.strip(_SEPARATOR)

    @property
    def owns_policy(self) -> bool:
        return self.is_root or not self.inherits


def read_group(item: dict[str, Any], domain_id: str, where: str = "GET /groups") -> SepmGroup:
    """A /groups item as a SepmGroup, or a malformed-answer error."""
    inherits = item.get("policyInheritanceEnabled", False)  # the definition's default
    if not isinstance(inherits, bool):
        name = item.get("fullPathName") or item.get("id")
        raise malformed(where, f"{name}: policyInheritanceEnabled is not true or false")
    return SepmGroup(
        id=text_field(item, "id", where),
        full_path_name=text_field(item, "fullPathName", where),
        policy_serial=text_field(item, "policySerialNumber", where),
        inherits=inherits,
        domain_id=domain_id,
    )


def policy_owners(groups: Iterable[SepmGroup]) -> dict[str, SepmGroup]:
    """Group id -> the group whose policy it has: itself, or its nearest owning ancestor."""
    listed = list(groups)
    by_path = {(g.domain_id, _key(g.full_path_name)): g for g in listed}
    owners: dict[str, SepmGroup] = {}
    for group in listed:
        owner = group
        while not owner.owns_policy:
            parent_path = owner.full_path_name.strip(_SEPARATOR).rsplit(_SEPARATOR, 1)[0]
            parent = by_path.get((group.domain_id, _key(parent_path)))
            if parent is None:
                raise SepmError(
                    f"group {group.full_path_name} inherits its policy, but its parent "
                    f"{parent_path} is not among the groups SEPM listed",
                    retryable=False,
                )
            owner = parent
        owners[group.id] = owner
    return owners


def _key(path: str) -> str:
    return path.strip(_SEPARATOR).lower()
