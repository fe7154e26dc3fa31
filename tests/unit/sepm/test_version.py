"""SEPM version strings as servers, registrations and people write them."""

from __future__ import annotations

import pytest

from certrotate_shared.sepm.version import SepmVersion, parse_version, reported_version

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("14.3.9000", SepmVersion(14, 3)),  # API_VERSION
        ("14.3.25029.9000", SepmVersion(14, 3)),  # version
        ("v14.3", SepmVersion(14, 3)),
        ("V14.3", SepmVersion(14, 3)),
        (" 14.2 RU1", SepmVersion(14, 2)),
        ("14 RU1 MP1", SepmVersion(14, 0)),
        ("14", SepmVersion(14, 0)),
        ("12.1.6000", SepmVersion(12, 1)),
        ("12.1 RU6 MP10", SepmVersion(12, 1)),
        ("", None),
        ("unknown", None),
        ("RU1", None),
        (None, None),
        (14.3, None),
    ],
)
def test_versions_are_read_robustly(text, expected):
    assert parse_version(text) == expected


def test_semapisrv_exists_from_14_on():
    assert SepmVersion(14, 0).has_api_service and not SepmVersion(12, 1).has_api_service


def test_the_product_version_is_preferred_then_the_api_version():
    answer = {"API_SEQUENCE": "240604011", "API_VERSION": "14.3.9000", "version": "14.3.25029"}
    assert reported_version(answer) == (SepmVersion(14, 3), "14.3.25029")
    assert reported_version({"API_VERSION": "14.2 RU1", "version": ""}) == (
        SepmVersion(14, 2),
        "14.2 RU1",
    )
    assert reported_version({"version": 14}) == (None, "")
