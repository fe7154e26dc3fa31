"""Every command a rotation sends carries its rotation in its idempotency key ("<saga id>:"),
which is how a worker finds the outcomes to forget when it purges that rotation's records
(certrotate_shared.message_retention). Random histories reach every step, re-send, cancel,
compensation and the bundle purge at the end."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certrotate_shared.message_retention import rotation_key_prefix
from certrotate_shared.registry import Command
from tests.unit.orchestrator.test_saga_properties import MOVES, OPTIONS, Checked, drain, play

pytestmark = pytest.mark.unit


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    options=OPTIONS,
    servers=st.integers(1, 3),
    moves=st.lists(st.tuples(st.sampled_from(MOVES), st.integers(0, 50)), max_size=60),
)
def test_every_command_of_a_rotation_is_keyed_under_its_saga_id(options, servers, moves):
    d = Checked(servers=servers, options=options)
    for move, n in moves:
        if d.state.terminal:
            break
        play(d, move, n)
    drain(d)
    prefix = rotation_key_prefix(d.state.saga_id)
    commands = [m for _, m in d.sent if isinstance(m, Command)]
    assert commands
    for command in commands:
        assert command.idempotency_key.startswith(prefix), command
