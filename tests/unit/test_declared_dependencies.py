"""Every package declares the third-party distributions it imports itself (issue 11, Low).

A package that imports FastAPI only because certrotate-shared happens to pull it in breaks the
day shared drops it, and its own pyproject no longer says what it needs to be installed alone.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Workspace member -> the source folders it ships.
MEMBERS = {
    ".": ["certrotate"],
    "shared": ["certrotate_shared"],
    "services/orchestrator": ["orchestrator"],
    "services/replication": ["replication"],
    "services/certificates": ["certificates"],
    "services/client-monitor": ["client_monitor"],
    "simulator": ["sepm_twin"],
}
FIRST_PARTY = {"certrotate", "certrotate_shared", "orchestrator", "replication", "certificates",
               "client_monitor", "sepm_twin"}  # fmt: skip


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(member: str) -> set[str]:
    project = tomllib.loads((ROOT / member / "pyproject.toml").read_text())["project"]
    return {
        _normal(re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0]) for spec in project["dependencies"]
    }


def imported_modules(folder: Path) -> dict[str, str]:
    """Top-level module imported at run time -> one file that imports it (for the message)."""
    found: dict[str, str] = {}
    for path in folder.rglob("*.py"):
        if "migrations" in path.parts and "versions" in path.parts:
            continue  # alembic revisions import only sqlalchemy and alembic, both declared in shared
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("member", sorted(MEMBERS))
def test_each_package_declares_what_it_imports(member: str) -> None:
    to_distributions = packages_distributions()
    declares = declared(member)
    missing: dict[str, str] = {}
    for source in MEMBERS[member]:
        for module, where in imported_modules(ROOT / member / source).items():
            if module in sys.stdlib_module_names or module in FIRST_PARTY or module == "__future__":
                continue
            # A namespace (opentelemetry) is provided by several distributions: one declared is
            # enough, the others come with it.
            distributions = {_normal(d) for d in to_distributions.get(module, [module])}
            if not distributions & declares:
                missing[module] = f"{' or '.join(sorted(distributions))}, imported in {where}"
    assert missing == {}, f"{member}/pyproject.toml does not declare what it imports"
