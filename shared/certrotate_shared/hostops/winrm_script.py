"""What runs on the Windows host: the fixed PowerShell bootstrap, and the standard-input
document that carries a script with its parameters, secrets and blobs (see winrm_session.py)."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

COMMON_SCRIPT = "CertrotateCommon.ps1"
RESULT_MARK = "CERTROTATE-RESULT "
ERROR_MARK = "CERTROTATE-ERROR "

# Reads one base64 document from standard input and runs the script it carries. Constant: the
# only thing that ever appears on the remote command line.
BOOTSTRAP = r"""
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
try {
    Add-Type -AssemblyName System.Web.Extensions
    $serializer = New-Object System.Web.Script.Serialization.JavaScriptSerializer
    $serializer.MaxJsonLength = [int]::MaxValue
    $raw = [Console]::In.ReadToEnd()
    $doc = $serializer.DeserializeObject(
        [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($raw.Trim())))
    $raw = $null
    $arguments = @{}
    foreach ($entry in $doc['params'].GetEnumerator()) { $arguments[$entry.Key] = $entry.Value }
    foreach ($entry in $doc['blobs'].GetEnumerator()) {
        $arguments[$entry.Key] = [Convert]::FromBase64String($entry.Value)
    }
    foreach ($entry in $doc['secrets'].GetEnumerator()) {
        $secure = New-Object System.Security.SecureString
        foreach ($char in $entry.Value.ToCharArray()) { $secure.AppendChar($char) }
        $secure.MakeReadOnly()
        $arguments[$entry.Key] = $secure
    }
    $doc['secrets'] = $null
    $doc['blobs'] = $null
    . ([ScriptBlock]::Create($doc['common']))
    & ([ScriptBlock]::Create($doc['script'])) @arguments
    exit 0
} catch {
    $code = $_.Exception.Data['certrotate.code']
    if (-not $code) { $code = 'SCRIPT_FAILED' }
    $failure = @{
        code = [string]$code
        message = [string]$_.Exception.Message
        retryable = [bool]$_.Exception.Data['certrotate.retryable']
    }
    [Console]::Out.WriteLine('CERTROTATE-ERROR ' + (ConvertTo-Json -Compress $failure))
    exit 1
}
"""


def scripts_directory() -> Path:
    """deploy/winrm of this checkout, or CERTROTATE_WINRM_SCRIPTS when installed elsewhere."""
    configured = os.environ.get("CERTROTATE_WINRM_SCRIPTS")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / "deploy" / "winrm"


def encoded_command(script: str) -> str:
    """PowerShell's -EncodedCommand form: base64 of the UTF-16LE text."""
    return base64.b64encode(script.encode("utf-16-le")).decode()


POWERSHELL_ARGS = [
    "-NoLogo",
    "-NoProfile",
    "-NonInteractive",
    "-ExecutionPolicy",
    "Bypass",
    "-EncodedCommand",
    encoded_command(BOOTSTRAP),
]


@dataclass(frozen=True)
class ScriptCall:
    """One script run: plain parameters, secrets (SecureString) and blobs (byte[]) apart."""

    script: str
    params: dict[str, str | int | bool]
    secrets: dict[str, str] = field(default_factory=dict, repr=False)
    blobs: dict[str, bytes] = field(default_factory=dict, repr=False)

    def document(self, scripts: Path) -> bytes:
        """The standard-input document the bootstrap reads (base64 of UTF-8 JSON)."""
        body = {
            "name": self.script,
            "common": (scripts / COMMON_SCRIPT).read_text(encoding="utf-8-sig"),
            "script": (scripts / self.script).read_text(encoding="utf-8-sig"),
            "params": self.params,
            "secrets": self.secrets,
            "blobs": {k: base64.b64encode(v).decode() for k, v in self.blobs.items()},
        }
        return base64.b64encode(json.dumps(body).encode()) + b"\r\n"
