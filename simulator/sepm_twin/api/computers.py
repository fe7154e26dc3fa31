"""Rendering fleet columns as SEPM computer records, a page at a time."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from sepm_twin.api.responses import SepmHTTPError
from sepm_twin.groups import policy_serial
from sepm_twin.site import Site

DOMAIN = {"id": "A1B2C3D4E5F60718293A4B5C6D7E8F90", "name": "Default"}


class ComputerView:
    """Per-site caches that make a 1,000-record page cheap to build."""

    def __init__(self, site: Site) -> None:
        self.site = site
        fleet = site.fleet
        self._group_objects = []
        for gid in fleet.group_ids:
            group = site.groups[gid]
            self._group_objects.append(
                {
                    "id": group.id,
                    "name": group.name,
                    "fullPathName": group.full_path,
                    "domain": DOMAIN,
                }
            )
        self._server_names = [s.name for s in site.servers]
        self._serials: dict[tuple[int, int], str] = {}
        tag = "".join(ch for ch in site.name.upper() if ch.isalnum())[:8] or "SITE"
        self.name_prefix = f"{tag}-WS"

    def computer_name(self, index: int) -> str:
        return f"{self.name_prefix}{index:07d}"

    def index_of_name(self, name: str) -> int | None:
        upper = name.upper()
        if not upper.startswith(self.name_prefix):
            return None
        digits = upper[len(self.name_prefix) :]
        if not digits.isdigit():
            return None
        index = int(digits)
        return (
            index if index < self.site.fleet.size and self.computer_name(index) == upper else None
        )

    def select(
        self,
        *,
        group_index: int | None,
        last_update: int,
        computer_name: str | None,
        descending: bool,
    ) -> npt.NDArray[np.int64] | range:
        """The client indices a query matches, in page order."""
        fleet = self.site.fleet
        selected: npt.NDArray[np.int64] | range
        if computer_name:
            found = self.index_of_name(computer_name)
            candidates = [] if found is None else [found]
            if found is not None and group_index is not None:
                candidates = [i for i in candidates if fleet.group[i] == group_index]
            selected = np.asarray(candidates, dtype=np.int64)
        elif group_index is not None:
            selected = fleet.members[group_index]
        else:
            selected = range(fleet.size)
        if last_update > 0:
            if isinstance(selected, range):
                selected = np.flatnonzero(fleet.last_update >= last_update)
            else:
                selected = selected[fleet.last_update[selected] >= last_update]
        if descending:
            selected = selected[::-1]
        return selected

    def render(self, indices: npt.NDArray[np.int64] | range) -> list[dict[str, Any]]:
        fleet = self.site.fleet
        idx = (
            np.arange(indices.start, indices.stop, indices.step)
            if isinstance(indices, range)
            else np.asarray(indices)
        )
        groups = fleet.group[idx].tolist()
        applied = fleet.applied_time[idx].tolist()
        updated = fleet.last_update[idx].tolist()
        servers = fleet.server[idx].tolist()
        online = fleet.online(idx).tolist()
        site = self.site
        prefix = site.client_prefix
        version = site.version_full
        group_objects, server_names, name_prefix = (
            self._group_objects,
            self._server_names,
            self.name_prefix,
        )
        out = []
        for i, g, t, u, s, on in zip(
            idx.tolist(), groups, applied, updated, servers, online, strict=True
        ):
            out.append(
                {
                    "uniqueId": f"{prefix}{i:08X}",
                    "computerName": f"{name_prefix}{i:07d}",
                    "onlineStatus": 1 if on else 0,
                    "lastUpdateTime": u,
                    "profileSerialNo": self._serial(g, t),
                    "profileVersion": version,
                    "agentVersion": version,
                    "group": group_objects[g],
                    "lastServerName": server_names[s],
                    "lastSiteName": site.name,
                    "lastConnectedIpAddr": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
                }
            )
        return out

    def _serial(self, group_index: int, policy_time: int) -> str:
        key = (group_index, policy_time)
        serial = self._serials.get(key)
        if serial is None:
            serial = policy_serial(self.site.fleet.group_ids[group_index], policy_time)
            self._serials[key] = serial
        return serial


def parse_order(sort: str | None, order: str | None) -> bool:
    """True for descending; SEPM sorts computers by name."""
    if sort and sort.upper() not in ("COMPUTER_NAME", "COMPUTERNAME", "NAME"):
        raise SepmHTTPError(400, f"Unsupported sort property {sort!r}; use COMPUTER_NAME")
    if order and order.upper() not in ("ASC", "DESC"):
        raise SepmHTTPError(400, f"Invalid order {order!r}; use ASC or DESC")
    return bool(order and order.upper() == "DESC")
