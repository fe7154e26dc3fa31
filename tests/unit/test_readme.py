from __future__ import annotations

from pathlib import Path

import pytest

from certrotate.settings_doc import variables

pytestmark = pytest.mark.unit

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_documented_in_the_readme():
    missing = [name for name in variables() if f"`{name}`" not in README]
    assert not missing, f"add these to the README (python -m certrotate.settings_doc): {missing}"


def test_the_readme_starts_with_the_two_commands_ci_uses():
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert "scripts/test.sh" in ci
    head = README[: README.index("## What the demo shows")]
    assert "scripts/demo.sh" in head and "scripts/test.sh" in head
