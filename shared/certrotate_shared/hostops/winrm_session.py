"""How the WinRM driver reaches a management server and runs one script there.

Why secrets stay out of command lines and transcripts:
- The command line is always the same fixed bootstrap (`powershell.exe -EncodedCommand ...`,
  see BOOTSTRAP) and never carries a parameter.
- The script text, its plain parameters, the secrets (keystore password) and the blobs
  (keystore bytes) travel as one document on the command's standard input, which WinRM sends
  in the message body: encrypted by NTLM/Kerberos/CredSSP message encryption over HTTP
  (forced to "always") or by TLS over HTTPS.
- The bootstrap turns each secret into a SecureString and each blob into a byte[] with .NET
  calls (not cmdlets, whose parameter bindings module logging could record), then runs the
  script with them as parameters. Script-block logging sees only the script text.

Where each server is reached: `site.host_ops.endpoint` may name one host, or be a template
with `{server}` / `{address}` (e.g. `https://{server}.corp.example:5986/wsman`); without an
endpoint it is `https://{address}:5986/wsman`. The account is the vault entry at
`host_ops.credential_ref`: {"username", "password", "domain"?, "transport"? (ntlm | kerberos |
credssp, default ntlm), "server_cert_validation"? (validate | ignore, default validate),
"ca_trust_path"?, "sepm_home"? (when SEPM is not installed where the scripts look)}.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from certrotate_shared.hostops.base import HostOperationError
from certrotate_shared.hostops.winrm_outcome import read_outcome, transport_error
from certrotate_shared.hostops.winrm_script import POWERSHELL_ARGS, ScriptCall
from certrotate_shared.messages.common import ServerTarget, SiteTarget
from certrotate_shared.vault import Vault

log = logging.getLogger("certrotate_shared.hostops.winrm")

DEFAULT_ENDPOINT = "https://{address}:5986/wsman"
STDIN_CHUNK = 48 * 1024  # well under WinRM's default MaxEnvelopeSizekb (500)
TRANSPORTS = ("ntlm", "kerberos", "credssp")

ProtocolFactory = Callable[..., Any]


def pywinrm_protocol(**kwargs: Any) -> Any:
    """pywinrm's Protocol, imported only when a WinRM site is actually reached."""
    from winrm.protocol import Protocol

    return Protocol(**kwargs)


class WinRMSession:
    """One site's WinRM account, read from the vault once, and the scripts run under it."""

    def __init__(
        self,
        site: SiteTarget,
        vault: Vault | None,
        *,
        timeout: float,
        scripts: Path,
        protocol_factory: ProtocolFactory,
    ) -> None:
        self._site = site
        self._vault = vault
        self._timeout = timeout
        self._scripts = scripts
        self._protocol_factory = protocol_factory
        self._account: dict[str, Any] | None = None

    def endpoint_for(self, server: ServerTarget) -> str:
        """The WinRM URL of one management server."""
        template = self._site.host_ops.endpoint or DEFAULT_ENDPOINT
        return template.format(server=server.name, address=server.address)

    async def run(
        self,
        server: ServerTarget,
        script: str,
        params: dict[str, str | int | bool],
        *,
        secrets: dict[str, str] | None = None,
        blobs: dict[str, bytes] | None = None,
        sepm_home: bool = True,
    ) -> dict[str, Any]:
        """Run one script of deploy/winrm on `server` and return the result it reported."""
        account = await self.account()
        if sepm_home and account.get("sepm_home"):
            params = {**params, "SepmHome": str(account["sepm_home"])}
        call = ScriptCall(script, params, secrets or {}, blobs or {})
        endpoint = self.endpoint_for(server)
        document = call.document(self._scripts)
        log.info(
            "winrm %s on %s (%s): params %s, secrets %s, blobs %s",
            call.script,
            server.name,
            endpoint,
            sorted(call.params),
            sorted(call.secrets),
            sorted(call.blobs),
        )
        what = f"run {call.script} on {server.name}"
        try:
            stdout, stderr, status = await asyncio.to_thread(
                self._execute, endpoint, account, document
            )
        except HostOperationError:
            raise
        except Exception as exc:
            raise transport_error(what, endpoint, exc) from exc
        return read_outcome(what, stdout, stderr, status)

    async def account(self) -> dict[str, Any]:
        """The site's WinRM vault entry, refused unless its transport encrypts the body."""
        if self._account is not None:
            return self._account
        ref = self._site.host_ops.credential_ref
        if self._vault is None or not ref:
            raise HostOperationError(
                f"site {self._site.site!r} uses WinRM but has no host_ops.credential_ref "
                "(or no vault was given)",
                code="MISCONFIGURED",
            )
        try:
            account = await self._vault.get(ref)
        except KeyError as exc:
            raise HostOperationError(
                f"no WinRM account is stored in the vault under {ref!r}", code="MISCONFIGURED"
            ) from exc
        if not account.get("username") or not account.get("password"):
            raise HostOperationError(
                f"the vault entry {ref!r} needs a username and a password", code="MISCONFIGURED"
            )
        if account.get("transport", "ntlm") not in TRANSPORTS:
            raise HostOperationError(
                f"WinRM transport {account.get('transport')!r} is not allowed: use one of "
                f"{', '.join(TRANSPORTS)} (they encrypt the message body)",
                code="MISCONFIGURED",
            )
        self._account = account
        return account

    def forget_account(self) -> None:
        """Drop the account read from the vault (the driver is closing)."""
        self._account = None

    def _execute(
        self, endpoint: str, account: Mapping[str, Any], document: bytes
    ) -> tuple[bytes, bytes, int]:
        username = str(account["username"])
        domain = account.get("domain")
        if domain and "\\" not in username and "@" not in username:
            username = f"{domain}\\{username}"
        protocol = self._protocol_factory(
            endpoint=endpoint,
            transport=account.get("transport", "ntlm"),
            username=username,
            password=account["password"],
            server_cert_validation=account.get("server_cert_validation", "validate"),
            ca_trust_path=account.get("ca_trust_path", "legacy_requests"),
            # Over plain HTTP the body must be encrypted: it carries the keystore password.
            message_encryption="always" if endpoint.startswith("http:") else "auto",
            read_timeout_sec=int(self._timeout) + 10,
            operation_timeout_sec=int(self._timeout),
        )
        shell = protocol.open_shell(codepage=65001)
        try:
            command = protocol.run_command(shell, "powershell.exe", POWERSHELL_ARGS)
            try:
                for start in range(0, len(document), STDIN_CHUNK):
                    chunk = document[start : start + STDIN_CHUNK]
                    last = start + STDIN_CHUNK >= len(document)
                    protocol.send_command_input(shell, command, chunk, end=last)
                stdout, stderr, status = protocol.get_command_output(shell, command)
            finally:
                protocol.cleanup_command(shell, command)
        finally:
            protocol.close_shell(shell)
        return bytes(stdout), bytes(stderr), int(status)
