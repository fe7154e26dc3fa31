from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
TREES = ("certrotate", "shared", "services", "simulator", "deploy", "docs", "tests", "bench")
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".json", ".ps1", ".sh", ".toml"}
# Handbook pages that live outside the repository: a reader of the code cannot open them.
OUTSIDE = ("SEPM" + ".md", "DESIGN" + ".md")


def test_comments_cite_sources_a_reader_can_open():
    files = [ROOT / "README.md"] + [
        path
        for tree in TREES
        for path in (ROOT / tree).rglob("*")
        if path.suffix in SUFFIXES and path.is_file() and "node_modules" not in path.parts
    ]
    citing = [
        str(path.relative_to(ROOT))
        for path in files
        if any(name in path.read_text(encoding="utf-8", errors="replace") for name in OUTSIDE)
    ]
    assert not citing, f"cite docs/design.md or the vendor source instead: {citing}"
