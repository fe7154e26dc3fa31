"""The one classification of worker errors: what is waited out, what ends in a typed failure."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import exc as sa_exc

from certrotate_shared.failures import describe, is_transient, typed_failure
from certrotate_shared.hostops.base import HostOperationError
from certrotate_shared.messages.certificates import (
    PurgeCertificateBundle,
    ServerCertificateUpdateFailed,
    UpdateServerCertificate,
)
from certrotate_shared.messages.replication import SiteInspectionFailed
from certrotate_shared.sepm.api import SepmAuthError, SepmError
from certrotate_shared.vault import SecretNotFoundError
from tests.support.factories import inspect_site, site_target

pytestmark = pytest.mark.unit


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def _db_error(orig: BaseException, cls: type[sa_exc.DBAPIError] = sa_exc.DBAPIError):
    return cls("SELECT sealed FROM vault_secrets WHERE ref = $1", {"ref": "hunter2"}, orig)


@pytest.mark.parametrize(
    "error",
    [
        SepmError("SEPM GET /groups failed with HTTP 503", status=503, retryable=True),
        SepmError("still throttled", status=429, retryable=True),
        HostOperationError("WinRM timed out", retryable=True),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError(),
        httpx.ConnectError("all connection attempts failed"),
        httpx.ReadTimeout("read timed out"),
        _db_error(_PgError("57P01")),  # admin shutdown: the database is restarting
        _db_error(_PgError("40001")),  # serialization failure
        _db_error(_PgError("08006")),  # connection failure
        _db_error(Exception("database is locked"), sa_exc.OperationalError),
        sa_exc.TimeoutError("QueuePool limit reached"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_infrastructure_trouble_is_waited_out(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        SepmError("SEPM GET /groups/x failed with HTTP 404", status=404, retryable=False),
        SepmAuthError("SEPM refused the API account", status=401, retryable=False),
        HostOperationError("keystore password wrong", retryable=False, code="WRONG_PASSWORD"),
        SecretNotFoundError("no secret stored under 'sepm/north'"),
        ValueError("a bug"),
        KeyError("groups"),
        AssertionError(),
        _db_error(_PgError("23505"), sa_exc.IntegrityError),  # unique violation: a bug
        _db_error(Exception("no such table: jobs"), sa_exc.OperationalError),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_that_will_not_change_by_waiting_are_permanent(error: BaseException) -> None:
    assert not is_transient(error)


def test_a_database_error_is_described_without_its_sql_parameters() -> None:
    error = _db_error(_PgError("23505"), sa_exc.IntegrityError)
    text = describe(error)
    assert text.startswith("IntegrityError: ")
    assert "hunter2" not in text and "vault_secrets" not in text


def test_a_description_is_one_bounded_line_without_a_private_key() -> None:
    key = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----"
    text = describe(RuntimeError(f"bad bundle {key}" + "x" * 2000 + "\nsecond line"))
    assert "MIIE" not in text
    assert "\n" not in text and len(text) <= 500


def test_a_command_with_a_typed_failure_is_answered_by_it() -> None:
    failure = typed_failure(inspect_site("saga-1"), "ValueError: a bug")
    assert failure == SiteInspectionFailed(
        site="site-a", reason="ValueError: a bug", retryable=False
    )
    site = site_target()
    update = UpdateServerCertificate(
        idempotency_key="k",
        site=site,
        server=site.servers[0],
        bundle_ref="b",
        expected_fingerprint="ab",
    )
    answer = typed_failure(update, "boom")
    assert isinstance(answer, ServerCertificateUpdateFailed)
    assert (answer.server, answer.retryable) == ("site-a-1", False)


def test_a_command_without_a_typed_failure_has_none() -> None:
    assert typed_failure(PurgeCertificateBundle(idempotency_key="k", bundle_ref="b"), "x") is None
