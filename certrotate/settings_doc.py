"""The configuration reference in the README, generated from the services' Settings classes.

Each setting's meaning is its `Field(description=...)`. `python -m certrotate.settings_doc`
prints the reference as Markdown; `python -m certrotate.settings_doc --write` rewrites it in the
README between its markers. A test fails when a setting has no description or when the README's
reference differs from the generated one, so the two cannot drift.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

from certrotate_shared.settings import ServiceSettings, env_prefix


def settings_classes() -> list[type[ServiceSettings]]:
    from certificates.settings import Settings as Certificates
    from client_monitor.settings import Settings as ClientMonitor
    from orchestrator.settings import Settings as Orchestrator
    from replication.settings import Settings as Replication

    return [Orchestrator, Replication, Certificates, ClientMonitor]


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value: Any = field.default
    if hasattr(value, "get_secret_value"):
        return "required" if not value.get_secret_value() else "(secret)"
    if value is None:
        return "unset"
    return f"`{value}`"


def _meaning(field: FieldInfo) -> str:
    return (field.description or "").replace("|", "\\|")


def reference() -> str:
    """Markdown: shared settings once, then each service's own."""
    shared = ServiceSettings.model_fields
    lines = [
        "Every variable can be set per service (`CERTROTATE_<SERVICE>_<NAME>`) or for all "
        "services at once (`CERTROTATE_<NAME>`); the service-specific one wins.",
        "",
        "**Shared by every service**",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
    ]
    for name, field in shared.items():
        lines.append(f"| `CERTROTATE_{name.upper()}` | {_default(field)} | {_meaning(field)} |")
    for cls in settings_classes():
        prefix = env_prefix(cls.service)
        own = {n: f for n, f in cls.model_fields.items() if n not in shared}
        lines += ["", f"**{cls.service}** (`{prefix}*`)", ""]
        lines += ["| variable | default | meaning |", "|---|---|---|"]
        for name, field in own.items():
            lines.append(f"| `{prefix}{name.upper()}` | {_default(field)} | {_meaning(field)} |")
        if cls.renamed_settings:
            renames = ", ".join(
                f"`{prefix}{old.upper()}` → `{prefix}{new.upper()}`"
                for old, new in cls.renamed_settings.items()
            )
            lines += ["", f"Renamed (the old names are still read, with a warning): {renames}."]
    return "\n".join(lines)


def variables() -> list[str]:
    """Every documented variable name."""
    names = [f"CERTROTATE_{n.upper()}" for n in ServiceSettings.model_fields]
    for cls in settings_classes():
        prefix = env_prefix(cls.service)
        names += [
            f"{prefix}{n.upper()}"
            for n in cls.model_fields
            if n not in ServiceSettings.model_fields
        ]
    return names


README = Path(__file__).resolve().parents[1] / "README.md"
BEGIN = "<!-- BEGIN configuration reference: python -m certrotate.settings_doc --write -->"
END = "<!-- END configuration reference -->"


def readme_reference(text: str) -> str:
    """The reference as committed in the README (between the markers)."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return text[start:end].strip("\n")


def with_reference(text: str) -> str:
    """The README text with its reference replaced by the generated one."""
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    return f"{text[:start]}\n{reference()}\n{text[end:]}"


def undescribed() -> list[str]:
    """Settings (as their variables) that have no description."""
    missing = [
        f"CERTROTATE_{n.upper()}"
        for n, f in ServiceSettings.model_fields.items()
        if not (f.description or "").strip()
    ]
    for cls in settings_classes():
        prefix = env_prefix(cls.service)
        missing += [
            f"{prefix}{n.upper()}"
            for n, f in cls.model_fields.items()
            if n not in ServiceSettings.model_fields and not (f.description or "").strip()
        ]
    return missing


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        README.write_text(with_reference(README.read_text()))
    else:
        print(reference())
