"""Does a certificate cover the names and addresses clients use? RFC 6125 matching on the
subject alternative names only (the common name is ignored, as modern TLS clients do)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from cryptography import x509

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class SubjectNames:
    dns: tuple[str, ...]
    ips: tuple[IPAddress, ...]

    def as_strings(self) -> list[str]:
        return [*self.dns, *(str(ip) for ip in self.ips)]


def subject_names(cert: x509.Certificate) -> SubjectNames:
    """The DNS names and IP addresses in the certificate's subjectAltName extension."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return SubjectNames((), ())
    dns = tuple(name.lower().rstrip(".") for name in san.get_values_for_type(x509.DNSName))
    ips = tuple(
        ip
        for ip in san.get_values_for_type(x509.IPAddress)
        if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)
    )
    return SubjectNames(dns, ips)


def covers(names: SubjectNames, host: str) -> bool:
    """True if a client connecting to `host` (a DNS name or an IP address) accepts the names."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        # An IP reference identity matches only an iPAddress SAN, never a DNS name.
        return address in names.ips
    reference = _a_labels(host)
    return any(_dns_matches(presented, reference) for presented in names.dns)


def uncovered(names: SubjectNames, hosts: list[str]) -> list[str]:
    """The hosts the names do not cover, in the order given, without duplicates."""
    missing: list[str] = []
    for host in hosts:
        if host and host not in missing and not covers(names, host):
            missing.append(host)
    return missing


def _a_labels(host: str) -> str:
    host = host.strip().rstrip(".").lower()
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _dns_matches(presented: str, reference: str) -> bool:
    if presented == reference:
        return True
    if not presented.startswith("*."):
        # Partial-label wildcards (f*.example.com) are not honoured: RFC 9525 and the
        # CA/Browser Forum forbid them, and SEPM clients on current TLS stacks refuse them.
        return False
    suffix = presented[2:]
    if "*" in suffix or suffix.count(".") < 1:
        return False  # "*.com" and nested wildcards never match
    label, _, rest = reference.partition(".")
    # The wildcard stands for exactly one whole left-most label.
    return bool(label) and rest == suffix
