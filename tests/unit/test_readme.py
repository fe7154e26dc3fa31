from __future__ import annotations

from pathlib import Path

import pytest

from certrotate.settings_doc import readme_reference, reference, undescribed, variables

pytestmark = pytest.mark.unit

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_documented_in_the_readme():
    missing = [name for name in variables() if f"`{name}`" not in README]
    assert not missing, f"add these to the README (python -m certrotate.settings_doc): {missing}"


def test_every_setting_says_what_it_is_for():
    assert not undescribed(), f"give these a Field(description=...): {undescribed()}"


def test_the_readme_reference_is_the_generated_one():
    # A stale row (a setting reading the meaning of the one above it) misleads an operator.
    assert readme_reference(README) == reference(), (
        "regenerate it: python -m certrotate.settings_doc --write"
    )


def test_each_setting_of_a_service_has_its_own_meaning():
    for table in reference().split("\n**"):
        rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| `")]
        meanings = [row[2] for row in rows]
        repeated = {m for m in meanings if meanings.count(m) > 1}
        assert not repeated, f"settings sharing one description: {repeated}"


def test_the_readme_starts_with_the_two_commands_ci_uses():
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert "scripts/test.sh" in ci
    head = README[: README.index("## What the demo shows")]
    assert "scripts/demo.sh" in head and "scripts/test.sh" in head
