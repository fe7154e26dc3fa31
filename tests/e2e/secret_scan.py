"""The secret scan of the end-to-end suite: no password, keystore, private key, API token or
master key used in a test may appear in any log line, message or event that test produced, in
any encoding (raw, base64 at any byte offset, URL-encoded, JSON-escaped, hex).

A test's secrets are registered as they are made or sent (the API client's request hook sees
every password, keystore and token that goes out); its sources are the service and twin logs,
this process's output, every message on its Kafka topics or in-process log, its rotations'
event histories and the API's answers. A finding names the secret, the encoding and the place,
never the value.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx

# Shorter needles would match by chance in a large log.
MIN_NEEDLE = 10
# Keys under which request bodies carry a secret.
SECRET_FIELDS = {"password", "data_b64", "key_b64", "token", "admin_token", "internal_token"}
PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)


def _b64_at_every_offset(data: bytes) -> Iterator[tuple[str, str]]:
    """The base64 text of `data` as it appears inside a larger encoded blob, for each of the
    three byte offsets it can start at (only the characters that depend on `data` alone)."""
    for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
        for offset in range(3):
            text = encode(b"\0" * offset + data).decode().rstrip("=")
            first = -(-8 * offset // 6)  # the first character after the prefix's bits
            last = (8 * (offset + len(data))) // 6  # characters fully inside the data
            yield f"{name}@{offset}", text[first:last]


def _text_encodings(value: str) -> Iterator[tuple[str, str]]:
    yield "raw", value
    yield "url-encoded", quote(value, safe="")
    yield "form-encoded", quote_plus(value)
    escaped = json.dumps(value)[1:-1]
    yield "json-escaped", escaped
    yield "json-escaped twice", json.dumps(escaped)[1:-1]
    yield "unicode-escaped", json.dumps(value, ensure_ascii=True)[1:-1]


def _binary_encodings(data: bytes) -> Iterator[tuple[str, str]]:
    yield "hex", data.hex()
    yield "HEX", data.hex().upper()
    yield "hex with colons", ":".join(f"{b:02x}" for b in data)
    yield from _b64_at_every_offset(data)


def _windows(data: bytes, *, skip: int = 0, size: int = 24) -> list[bytes]:
    """Back-to-back slices of a large secret, so any leaked part of twice their size holds one:
    a partial leak is a leak. `skip` leaves out a header every secret of its kind shares."""
    if len(data) <= size * 2:
        return [data]
    return [data[i : i + size] for i in range(skip, len(data) - size + 1, size)]


def _pem_lines(data: bytes) -> Iterator[tuple[str, str]]:
    """Lines of the secret as a PEM body (64 characters each), past the generic first one."""
    text = base64.b64encode(data).decode()
    for index in range(1, min(len(text) // 64, 4)):
        yield "PEM body line", text[index * 64 : (index + 1) * 64]


@dataclass
class Needle:
    secret: str
    encoding: str
    text: str


@dataclass
class Finding:
    secret: str
    encoding: str
    source: str
    line: int

    def __str__(self) -> str:
        return f"{self.secret} ({self.encoding}) in {self.source}, line {self.line}"


@dataclass
class SecretScan:
    """Secrets of one test, the places to search, and what was found."""

    secrets: dict[str, bytes] = field(default_factory=dict)
    texts: list[tuple[str, str]] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    log_dirs: list[Path] = field(default_factory=list)
    transport_dbs: list[Path] = field(default_factory=list)
    # Answers that hand a secret out on purpose (a new token, shown once).
    allowed_answers: set[str] = field(default_factory=lambda: {"POST /v1/tokens"})
    # (sources, characters) searched by the last findings().
    searched: tuple[int, int] = (0, 0)
    kinds: Counter[str] = field(default_factory=Counter)
    # Public material inside a registered keystore (its certificates): not a finding.
    public_parts: list[bytes] = field(default_factory=list)
    headers: dict[str, int] = field(default_factory=dict)
    # (bootstrap, topic prefix) of the test's Kafka topics, when it has any.
    kafka: tuple[str, str] | None = None

    def summary(self) -> str:
        sources, chars = self.searched
        return (
            f"secret scan: {len(self.secrets)} secrets, {len(self.needles())} encodings, "
            f"{sources} sources ({', '.join(f'{k} {n}' for k, n in sorted(self.kinds.items()))}), "
            f"{chars / 1e6:.1f} M characters"
        )

    # --- secrets ---

    def secret(self, name: str, value: str | bytes | None, *, header: int = 0) -> None:
        """Register a secret; the first `header` bytes are the same in every secret of its
        kind (a keystore's structure) and are not searched."""
        if not value:
            return
        data = value.encode() if isinstance(value, str) else value
        if len(data) < 6 or data in self.secrets.values():
            return
        self.secrets.setdefault(name, data)
        self.headers[name] = header

    def keystore(self, name: str, data: bytes, password: str | None) -> None:
        """A keystore (PKCS#12, JKS, PEM): its bytes and the private key it holds. Only the
        private parts count: a key's modulus is also in its certificate, which is public."""
        self.secret(f"{name} password", password)
        blocks = PEM_BLOCK.findall(data)
        if blocks:
            for label, body in blocks:
                if b"PRIVATE KEY" in label:
                    der = base64.b64decode(b"".join(body.split()))
                    for index, part in enumerate(_private_parts_of_der(der)):
                        self.secret(f"{name} private key part {index}", part)
            return
        key, certificates = _pkcs12_contents(data, password)
        self.secret(f"{name} keystore", data, header=64)
        self.public_parts.extend(certificates)
        for index, part in enumerate(_private_parts(key) if key is not None else []):
            self.secret(f"{name} private key part {index}", part)

    def request_body(self, body: bytes, where: str) -> None:
        """Every secret a request sends (passwords, keystores, tokens), found by field name."""
        try:
            document = json.loads(body)
        except ValueError:
            return
        for path, value in _walk(document):
            name = path[-1] if path else ""
            if name not in SECRET_FIELDS or not isinstance(value, str):
                continue
            if name in ("data_b64", "key_b64"):
                try:
                    data = base64.b64decode(value, validate=True)
                except (ValueError, binascii.Error):
                    continue
                parent = _lookup(document, path[:-1])
                password = parent.get("password") if isinstance(parent, dict) else None
                self.keystore(f"{where} {'.'.join(path[:-1])}", data, password)
            else:
                self.secret(f"{where} {'.'.join(path)}", value)

    # --- where to look ---

    def text(self, source: str, value: str | bytes) -> None:
        self.texts.append(
            (source, value.decode(errors="replace") if isinstance(value, bytes) else value)
        )

    def stack_secrets(self, master_key: str, internal_token: str, admin_token: str) -> None:
        """The secrets a certrotate stack runs with (the master key also as its raw bytes)."""
        self.secret("master key", master_key)
        try:
            self.secret("master key (raw)", base64.urlsafe_b64decode(master_key.encode()))
        except (ValueError, binascii.Error):
            pass
        self.secret("internal token", internal_token)
        self.secret("admin token", admin_token)

    def secrets_file(self, path: Path) -> None:
        """The secrets an embedded or `up` stack made and kept in its data dir."""
        kept = json.loads(path.read_text())
        self.stack_secrets(kept["master_key"], kept["internal_token"], kept["admin_token"])

    def log_dir(self, path: Path) -> None:
        """Every *.log file under `path` at the end of the test."""
        self.log_dirs.append(path)

    def transport_db(self, path: Path) -> None:
        """The embedded stack's message log (SQLite)."""
        self.transport_dbs.append(path)

    def watch_client(
        self, client: httpx.AsyncClient, label: str = "API", *, search_answers: bool = True
    ) -> None:
        """Register the secrets the client sends and receives; search its other answers (not
        for a client of the twin's control plane, which hands out keystores on purpose)."""

        async def on_request(request: httpx.Request) -> None:
            if request.content:
                self.request_body(request.content, f"{label} {request.method} {request.url.path}")

        async def on_response(response: httpx.Response) -> None:
            await response.aread()
            route = f"{response.request.method} {response.request.url.path}"
            if not search_answers or route in self.allowed_answers:
                self.request_body(response.content, f"{label} answer to {route}")
                return
            self.text(f"{label} answer to {route}", response.content)

        client.event_hooks["request"].append(on_request)
        client.event_hooks["response"].append(on_response)

    async def rotation_events(self, api: httpx.AsyncClient) -> None:
        """Every rotation's history, as the events API returns it."""
        listing = await api.get("/v1/rotations", params={"limit": 200})
        if listing.status_code != 200:
            return
        for rotation in listing.json().get("items", []):
            after: int | None = 0
            while after is not None:
                page = await api.get(
                    f"/v1/rotations/{rotation['id']}/events", params={"after": after, "limit": 1000}
                )
                if page.status_code != 200:
                    break
                body = page.json()
                self.text(f"events of rotation {rotation['id']}", json.dumps(body["items"]))
                after = body.get("next_after")

    def watch_kafka(self, bootstrap: str, prefix: str) -> None:
        """Search the test's topics (`<prefix>.*`) at its end."""
        self.kafka = (bootstrap, prefix)

    async def kafka_topics(self, bootstrap: str, prefix: str) -> None:
        """Every record (key, value, headers) on the topics whose names start with `prefix.`."""
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            topics = [t for t in await admin.list_topics() if t.startswith(f"{prefix}.")]
            described = await admin.describe_topics(topics) if topics else []
        finally:
            await admin.close()
        partitions = [
            TopicPartition(topic["topic"], partition["partition"])
            for topic in described
            for partition in topic["partitions"]
        ]
        if not partitions:
            return
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            remaining = {tp for tp, end in ends.items() if end > 0}
            while remaining:
                batches = await consumer.getmany(timeout_ms=2000, max_records=1000)
                if not batches:
                    break
                for tp, records in batches.items():
                    for record in records:
                        headers = b" ".join(
                            k.encode() + b"=" + (v or b"") for k, v in record.headers
                        )
                        self.text(
                            f"kafka {tp.topic}[{tp.partition}]@{record.offset}",
                            (record.key or b"") + b" " + (record.value or b"") + b" " + headers,
                        )
                        if record.offset + 1 >= ends[tp]:
                            remaining.discard(tp)
        finally:
            await consumer.stop()

    # --- the search ---

    def needles(self) -> list[Needle]:
        found: list[Needle] = []
        for name, data in self.secrets.items():
            candidates: list[tuple[str, str]] = []
            try:
                text = data.decode()
            except UnicodeDecodeError:
                text = None
            if text is not None and text.isprintable():
                candidates += _text_encodings(text)
                candidates += _binary_encodings(data)
            else:
                for window in _windows(data, skip=self.headers.get(name, 0)):
                    if not any(window in public for public in self.public_parts):
                        candidates += _binary_encodings(window)
                candidates += _pem_lines(data)
            seen: set[str] = set()
            for encoding, needle in candidates:
                if len(needle) >= MIN_NEEDLE and needle not in seen:
                    seen.add(needle)
                    found.append(Needle(name, encoding, needle))
        return found

    def sources(self) -> Iterator[tuple[str, str]]:
        yield from self.texts
        for directory in self.log_dirs:
            for path in sorted(directory.rglob("*.log")):
                yield str(path), path.read_text(errors="replace")
        for path in self.files:
            if path.exists():
                yield str(path), path.read_text(errors="replace")
        for path in self.transport_dbs:
            if not path.exists():
                continue
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
                rows = db.execute("SELECT topic, offset, key, value, headers FROM records")
                for topic, offset, key, value, headers in rows:
                    raw = value.decode(errors="replace") if isinstance(value, bytes) else value
                    yield f"in-process log {topic}@{offset}", f"{key} {raw} {headers}"

    def findings(self) -> list[Finding]:
        needles = self.needles()
        results: list[Finding] = []
        self.searched = (0, 0)
        self.kinds: Counter[str] = Counter()
        for source, text in self.sources():
            self.searched = (self.searched[0] + 1, self.searched[1] + len(text))
            self.kinds[source.split()[0] if not source.startswith("/") else "log file"] += 1
            for needle in needles:
                at = text.find(needle.text)
                if at >= 0:
                    line = text.count("\n", 0, at) + 1
                    results.append(Finding(needle.secret, needle.encoding, source, line))
        return results


def _walk(value: Any, path: tuple[str, ...] = ()) -> Iterable[tuple[tuple[str, ...], Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, (*path, str(key)))
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item, path)
    else:
        yield path, value


def _lookup(document: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document


def _pkcs12_contents(data: bytes, password: str | None) -> tuple[Any, list[bytes]]:
    """The private key and the certificates (DER) of a PKCS#12; (None, []) for anything else."""
    from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

    try:
        key, cert, extra = pkcs12.load_key_and_certificates(
            data, password.encode() if password else None
        )
    except (ValueError, TypeError):
        return None, []
    return key, [c.public_bytes(Encoding.DER) for c in [cert, *extra] if c is not None]


def _private_parts_of_der(der: bytes) -> list[bytes]:
    from cryptography.hazmat.primitives.serialization import load_der_private_key

    try:
        return _private_parts(load_der_private_key(der, None))
    except (ValueError, TypeError):
        return [der]


def _private_parts(key: Any) -> list[bytes]:
    """The numbers only the key's holder knows, as they sit in its DER encoding."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    def raw(number: int) -> bytes:
        return number.to_bytes((number.bit_length() + 7) // 8, "big")

    if isinstance(key, rsa.RSAPrivateKey):
        n = key.private_numbers()
        return [raw(v) for v in (n.d, n.p, n.q, n.dmp1, n.dmq1, n.iqmp)]
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return [raw(key.private_numbers().private_value)]
    return []
