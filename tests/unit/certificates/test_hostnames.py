"""Which client host names and addresses a certificate covers (RFC 6125)."""

from __future__ import annotations

import ipaddress

import pytest

from certificates.domain.hostnames import SubjectNames, covers, uncovered

pytestmark = pytest.mark.unit

NAMES = SubjectNames(
    dns=("*.corp.example", "sepm-a1.site.example", "f*.bad.example", "*.com"),
    ips=(ipaddress.ip_address("10.0.0.5"), ipaddress.ip_address("2001:db8::1")),
)


@pytest.mark.parametrize(
    ("host", "covered"),
    [
        ("sepm-a1.corp.example", True),
        ("SEPM-A1.Corp.Example.", True),  # case and a trailing dot do not matter
        ("corp.example", False),  # a wildcard never covers the bare domain
        ("a.b.corp.example", False),  # ...nor more than one label
        ("sepm-a1.site.example", True),
        ("sepm-a2.site.example", False),
        ("foo.bad.example", False),  # partial-label wildcards are not honoured
        ("example.com", False),  # "*.com" is too broad to honour
        ("10.0.0.5", True),
        ("10.0.0.6", False),
        ("2001:db8:0::1", True),  # the same IPv6 address written differently
        ("[2001:db8::1]", True),
    ],
)
def test_rfc6125_matching(host: str, covered: bool) -> None:
    assert covers(NAMES, host) is covered


def test_an_ip_address_is_never_covered_by_a_dns_name() -> None:
    assert not covers(SubjectNames(dns=("10.0.0.5",), ips=()), "10.0.0.5")


def test_uncovered_lists_each_missing_host_once_in_order() -> None:
    assert uncovered(NAMES, ["x.y.example", "10.0.0.9", "x.y.example", "a.corp.example"]) == [
        "x.y.example",
        "10.0.0.9",
    ]
