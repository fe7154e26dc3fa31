"""The orchestrator's migrations form one chain: two engineers' revisions with the same parent
(or the same id) would stop every service from starting."""

from __future__ import annotations

from alembic.config import Config
from alembic.script import ScriptDirectory

from orchestrator.migrations import SCRIPT_LOCATION


def test_the_migrations_have_one_head_and_unique_ids():
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    script = ScriptDirectory.from_config(config)
    assert len(script.get_heads()) == 1, script.get_heads()
    revisions = list(script.walk_revisions())
    assert len({r.revision for r in revisions}) == len(revisions)
