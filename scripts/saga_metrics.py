"""Figures for docs/design.md (issue 15 item 1): module sizes and where saga steps are named.

    .venv/bin/python scripts/saga_metrics.py

A step is "named" where product code spells one of the saga table's step names as a string
literal (or a piece of an f-string) outside the table itself (domain/steps.py): each such
place breaks silently when a step is renamed, added or removed. Module sizes count physical
lines of every .py file under certrotate/, shared/, services/ and simulator/ (product code,
not tests or benchmarks).
"""

from __future__ import annotations

import ast
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("certrotate", "shared", "services", "simulator")
ORCHESTRATOR = ROOT / "services" / "orchestrator" / "orchestrator"
TABLE = ORCHESTRATOR / "domain" / "steps.py"
# The rotation saga's modules, before and after issue 15 (those that exist are listed).
SAGA = (
    "saga", "walk", "transition", "gates", "timers", "operator_actions", "steps", "step_kinds",
    "replication_steps", "verification_steps", "propagation_steps", "certificate_steps",
    "liveness", "state", "inputs",
)  # fmt: skip


def product_modules() -> list[Path]:
    return sorted(
        p
        for top in PRODUCT
        for p in (ROOT / top).rglob("*.py")
        if ".venv" not in p.parts and "tests" not in p.parts
    )


def lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def step_names() -> set[str]:
    sys.path[:0] = [str(ROOT / "services" / "orchestrator"), str(ROOT / "shared")]
    from orchestrator.domain.steps import TABLES

    return {step.name for table in TABLES.values() for step in table}


def named_steps(path: Path, names: set[str]) -> list[tuple[int, str]]:
    """(line, name) of every string literal in the module that is a step name."""
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # "restore_replication" is also a kind of answer deadline (`step.answer == ...`, and in
    # the AnswerKind literal): not a step there.
    answer_kinds = {
        id(c)
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare)
        and isinstance(node.left, ast.Attribute)
        and node.left.attr == "answer"
        for c in node.comparators
    } | {
        id(c)
        for node in ast.walk(tree)
        if isinstance(node, ast.Subscript)
        and isinstance(node.value, ast.Name)
        and node.value.id == "Literal"
        for c in ast.walk(node.slice)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.strip(":@/ ")
            if text in names and id(node) not in answer_kinds:
                found.append((node.lineno, text))
    return sorted(found)


def sizes(modules: list[Path]) -> str:
    counted = sorted(((lines(p), p) for p in modules), reverse=True)
    largest, path = counted[0]
    median = statistics.median(n for n, _ in counted)
    return (
        f"{len(counted)} modules, largest {largest} ({path.relative_to(ROOT)}), median {median:g}"
    )


def main() -> None:
    modules = product_modules()
    print("product:     ", sizes(modules))
    orchestrator = [p for p in modules if ORCHESTRATOR in p.parents]
    print("orchestrator:", sizes(orchestrator))
    domain = [ORCHESTRATOR / "domain" / f"{name}.py" for name in SAGA]
    print("saga modules:", ", ".join(f"{p.stem} {lines(p)}" for p in domain if p.exists()))
    names = step_names()
    total = 0
    for path in orchestrator:
        if path == TABLE:
            continue
        hits = named_steps(path, names)
        if hits:
            total += len(hits)
            where = ", ".join(f"{line}:{name}" for line, name in hits)
            print(f"  {path.relative_to(ORCHESTRATOR)}: {len(hits)} ({where})")
    print(f"step names spelled outside the table: {total}")


if __name__ == "__main__":
    main()
