"""Certificates as bits, so a client's trusted set is one uint64 column in the fleet.

Bits are numbered per site (a client only meets its own site's servers): 64 distinct served
certificates per site, as many sites per twin as memory allows."""

from __future__ import annotations

MAX_CERTIFICATES = 64


class CertificateBits:
    def __init__(self) -> None:
        self._bits: dict[str, int] = {}

    def bit(self, fingerprint: str) -> int:
        """The bit for a certificate, assigned the first time it is served."""
        if fingerprint not in self._bits:
            if len(self._bits) >= MAX_CERTIFICATES:
                raise RuntimeError(
                    f"the twin tracks at most {MAX_CERTIFICATES} distinct served certificates "
                    "per site"
                )
            self._bits[fingerprint] = 1 << len(self._bits)
        return self._bits[fingerprint]

    def fingerprints(self, mask: int) -> list[str]:
        return [fp for fp, bit in self._bits.items() if mask & bit]
