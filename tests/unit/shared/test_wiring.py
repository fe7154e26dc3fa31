"""Every service's bootstrap gives handlers and performers their dependencies by parameter name
(certrotate_shared.wiring): a handler gets what it names and nothing else, and a name no
bootstrap provides is refused when the service is built, not when the first message comes."""

from __future__ import annotations

import pytest

from certrotate_shared.wiring import MissingDependencyError, inject, inject_all

pytestmark = pytest.mark.unit


async def test_a_handler_gets_the_dependencies_it_names_and_only_those() -> None:
    async def handler(message: str, ctx: object, *, clock: str, work: str) -> str:
        return f"{message} {ctx} {clock} {work}"

    bound = inject(handler, {"clock": "manual-clock", "work": "runner", "sepm": "connector"})

    assert await bound("msg", "ctx") == "msg ctx manual-clock runner"


def test_a_dependency_no_bootstrap_provides_is_refused_at_wiring_time() -> None:
    async def handler(message: str, ctx: object, *, sepm: str) -> None: ...

    with pytest.raises(MissingDependencyError, match="needs sepm"):
        inject_all({str: handler}, {"clock": "c"})


LONG_RUNNING = {
    "certificates": {
        "SetCertificateVerification",
        "CheckCertificateVerification",
        "UpdateServerCertificate",
        "RollbackServerCertificate",
    },
    "replication": {"BreakReplication", "RestoreReplication"},
    "client_monitor": {"AwaitPolicyPropagation"},
}


@pytest.mark.parametrize("service", sorted(LONG_RUNNING))
def test_every_worker_service_wires_its_handler_and_work_tables(
    service: str, master_key: str
) -> None:
    """The tables at the bottom of handlers.py are what runs: every handler is bound, and
    every long-running command a handler accepts has the performer that carries it out."""
    import importlib

    handlers = importlib.import_module(f"{service}.service_layer.handlers")
    bootstrap = importlib.import_module(f"{service}.bootstrap")
    settings = importlib.import_module(f"{service}.settings").Settings(
        master_key=master_key, internal_token="internal-token-for-tests-0123456789"
    )

    runtime = bootstrap.build_runtime(settings, transport=object())

    assert set(runtime.spec.handlers) == set(handlers.HANDLERS)
    accepted = {c.__name__ for c in handlers.HANDLERS}
    performed = {c.__name__ for c in handlers.WORK}
    assert LONG_RUNNING[service] <= accepted & performed
