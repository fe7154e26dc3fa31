"""The twin writes a /computers page's JSON straight from its columns: it must be the very page
that building each computer as an object and serialising it gives (SEPM's fields, in order)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import orjson
import pytest

from sepm_twin.api.computers import ComputerView
from sepm_twin.api.paging import page, sort_spec
from sepm_twin.scenario import load_scenario
from sepm_twin.world import World

pytestmark = pytest.mark.unit

OFF = {
    "configuration": {"general_settings": {"security_settings": {"secure_communications": False}}}
}


def varied_world() -> World:
    """Names that need escaping (a quote, a backslash, a percent sign, non-ASCII), several
    servers, domains and agent versions, offline and stale clients, an inheriting group."""
    return World(
        load_scenario(
            {
                "seed": 11,
                "clock": {"speed": 0},
                "sites": [
                    {
                        "name": 'Zürich "HQ" 100%',
                        "version": "14.3.9000",
                        "servers": [{"name": "sepm-1"}, {"name": "sepm-%d\\2"}, {"name": "s3"}],
                        "groups": [
                            {
                                "name": 'My Company\\Desk "tops" 50%',
                                "clients": 700,
                                "offline": {"fraction": 0.1, "days": 3, "since_days": 40},
                                "agent_versions": {"14.2.1000": 0.3, 'odd "1"': 0.1},
                                "locations": ["Default", "Remote"],
                            },
                            {
                                "name": 'My Company\\Desk "tops" 50%\\Kids',
                                "inherits": True,
                                "clients": 150,
                            },
                            {
                                "name": "Ünits\\Servers",
                                "domain": "Europe",
                                "clients": 400,
                                "mode": "push",
                            },
                        ],
                    }
                ],
            }
        )
    )


def as_objects(
    view: ComputerView, chunk: npt.NDArray[np.int64] | range, *, index: int, size: int, total: int
) -> bytes:
    return orjson.dumps(
        page(
            view.render(chunk),
            index=index,
            size=size,
            total=total,
            sort=sort_spec("COMPUTER_NAME", False),
        )
    )


def test_the_page_written_from_columns_is_the_page_of_computer_objects_byte_for_byte() -> None:
    world = varied_world()
    site = next(iter(world.sites.values()))
    view = ComputerView(site)
    # A policy change half taken, so pages hold clients on the old and on the new serial.
    group = site.group_by_path('My Company\\Desk "tops" 50%')
    assert group is not None
    for location in group.locations:
        site.patch_location(group, location.id, OFF, world.sync())
    world.advance(150)
    chunks: list[npt.NDArray[np.int64] | range] = [
        range(0, 1250),
        range(0, 0),
        range(1249, 1250),
        np.arange(1250)[::-1][:333],
        np.array([3, 700, 701, 1249, 0], dtype=np.int64),
    ]
    seen_serials = set()
    for n, chunk in enumerate(chunks, start=1):
        expected = as_objects(view, chunk, index=n, size=400, total=1250)
        assert (
            view.render_page(
                chunk, index=n, size=400, total=1250, sort=sort_spec("COMPUTER_NAME", False)
            )
            == expected
        )
        seen_serials |= {c["profileSerialNo"] for c in orjson.loads(expected)["content"]}
    assert len(seen_serials) >= 3  # the check covered old and new serials of several groups


def test_an_empty_selection_is_an_empty_page() -> None:
    site = next(iter(varied_world().sites.values()))
    view = ComputerView(site)
    body = view.render_page(range(0, 0), index=1, size=20, total=0, sort=None)
    assert orjson.loads(body) == page([], index=1, size=20, total=0, sort=None)
