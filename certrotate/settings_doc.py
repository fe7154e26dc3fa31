"""The configuration reference in the README, generated from the services' Settings classes.

`python -m certrotate.settings_doc` prints it as Markdown; a test checks the README has every
variable, so a new setting cannot ship undocumented.
"""

from __future__ import annotations

import inspect
import re
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


def field_comments(cls: type) -> dict[str, str]:
    """The comment block above each field in the class body: the settings' own documentation."""
    comments: dict[str, str] = {}
    pending: list[str] = []
    previous = ""  # a comment also covers the fields right below it, until a blank line
    for line in inspect.getsource(cls).splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            pending.append(stripped.lstrip("# ").strip())
            continue
        match = re.match(r"^    (\w+)\s*:", line)
        if match and (pending or previous):
            previous = " ".join(pending) or previous
            comments[match.group(1)] = previous
        else:
            previous = ""
        pending = []
    return comments


def _described(cls: type) -> dict[str, str]:
    described: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if issubclass(klass, ServiceSettings):
            described |= field_comments(klass)
    return {k: v.replace("|", "\\|") for k, v in described.items()}


def reference() -> str:
    """Markdown: shared settings once, then each service's own."""
    shared = ServiceSettings.model_fields
    shared_docs = _described(ServiceSettings)
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
        lines.append(
            f"| `CERTROTATE_{name.upper()}` | {_default(field)} | {shared_docs.get(name, '')} |"
        )
    for cls in settings_classes():
        prefix = env_prefix(cls.service)
        own = {n: f for n, f in cls.model_fields.items() if n not in shared}
        docs = _described(cls)
        lines += ["", f"**{cls.service}** (`{prefix}*`)", ""]
        lines += ["| variable | default | meaning |", "|---|---|---|"]
        for name, field in own.items():
            lines.append(f"| `{prefix}{name.upper()}` | {_default(field)} | {docs.get(name, '')} |")
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


if __name__ == "__main__":
    print(reference())
