"""The simulated world without any network: replication, services, host operations."""

from __future__ import annotations

import pytest

from sepm_twin.groups import Group
from sepm_twin.scenario import load_scenario
from sepm_twin.world import HostError, World

pytestmark = pytest.mark.unit

OFF = {
    "configuration": {"general_settings": {"security_settings": {"secure_communications": False}}}
}


def make_world(**replication: float) -> World:
    return World(
        load_scenario(
            {
                "seed": 5,
                "clock": {"speed": 0},
                "replication": {"interval_s": 3600, "duration_s": 60, **replication},
                "sites": [
                    {
                        "name": "a",
                        "servers": [{"name": "a1"}],
                        "replication_partners": ["b"],
                        "groups": [{"name": "My Company\\Shared", "clients": 10}],
                    },
                    {"name": "b", "servers": [{"name": "b1"}], "groups": []},
                    {"name": "lonely", "servers": [{"name": "c1"}], "version": "12.1.6"},
                ],
            }
        )
    )


def shared(world: World, site: str) -> Group:
    group = world.sites[site].group_by_path("My Company\\Shared")
    assert group is not None
    return group


def test_partners_share_one_group_tree_and_unrelated_sites_do_not() -> None:
    world = make_world()
    assert shared(world, "a").id == shared(world, "b").id
    assert world.sites["lonely"].group_by_path("My Company\\Shared") is None
    assert world.sites["lonely"].group_by_path("My Company") is not None


def test_a_change_reaches_the_partner_at_the_next_scheduled_run_and_not_before() -> None:
    world = make_world()
    group = shared(world, "a")
    world.sites["a"].patch_location(group, group.locations[0].id, OFF, world.sync())
    world.advance(1800)
    assert shared(world, "b").serial != group.serial
    world.advance(1800 + 60)
    assert shared(world, "b").serial == group.serial
    assert not shared(world, "b").locations[0].secure


def test_a_deleted_partnership_stops_replication() -> None:
    world = make_world()
    world.delete_partner("b", "a")
    group = shared(world, "a")
    world.sites["a"].patch_location(group, group.locations[0].id, OFF, world.sync())
    world.advance(5 * 3600)
    assert shared(world, "b").serial != group.serial
    # Site a's own list still names b, so deleting there works once, then finds nothing.
    world.delete_partner("a", "b")
    with pytest.raises(HostError) as missing:
        world.delete_partner("a", "b")
    assert missing.value.status == 404


def test_semapisrv_does_not_exist_before_14() -> None:
    world = make_world()
    server = world.server("c1")
    assert list(server.services) == ["semsrv", "semwebsrv"]
    assert server.owner_of("8446") == "semsrv"  # Tomcat serves the web services itself
    with pytest.raises(HostError) as refused:
        world.check_service(server, "semapisrv")
    assert refused.value.status == 409


def test_issued_certificates_are_new_each_time() -> None:
    world = make_world()
    one = world.issue_certificate(hostnames=["x"], common_name="x", days=30)
    two = world.issue_certificate(hostnames=["x"], common_name="x", days=30)
    assert one.fingerprint_sha256 != two.fingerprint_sha256


def test_one_twin_holds_an_estate_of_more_than_64_served_certificates() -> None:
    # Each site's clients trust only their own servers: 70 sites, 70 certificates, one twin
    # (it used to refuse a 65th distinct certificate across all its sites).
    world = World(
        load_scenario(
            {
                "seed": 5,
                "clock": {"speed": 0},
                "sites": [
                    {"name": f"s{i}", "servers": [{"name": f"s{i}-1"}],
                     "groups": [{"name": "My Company\\Default", "clients": 2}]}
                    for i in range(70)
                ],
            }
        )
    )  # fmt: skip
    last = world.sites["s69"]
    served = last.servers[0].client_facing.fingerprint_sha256
    assert last.fleet.bits.fingerprints(int(last.fleet.trusted[0])) == [served]
