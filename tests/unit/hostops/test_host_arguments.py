"""What reaches a program's command line on the SEPM host (keytool, a replication recipe):
names from untrusted places (a JKS alias read from the uploaded keystore, a partner site name
from SEPM or a message) are refused unless plain, and every argument is quoted by the Windows
argv rules, so nothing can add `-J...` JVM options to keytool (code execution as the WinRM
account). The PowerShell side cannot run here (no Windows, no pwsh): its pattern and quoting
regexes are read out of CertrotateCommon.ps1 and checked against the Python reference."""

from __future__ import annotations

import re
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certrotate_shared.hostops import HostOperationError
from certrotate_shared.hostops.arguments import (
    HOST_NAME_PATTERN,
    UnsafeHostArgument,
    check_host_name,
    windows_command_line,
    windows_quote,
)
from certrotate_shared.hostops.winrm import WinRMHostOperations
from certrotate_shared.hostops.winrm_script import scripts_directory
from certrotate_shared.messages.common import HostOpsTarget, ServerTarget, SiteTarget
from certrotate_shared.vault import Vault

pytestmark = pytest.mark.unit

COMMON = (scripts_directory() / "CertrotateCommon.ps1").read_text("utf-8-sig")

HOSTILE = [
    'a" -J-Dx=1',  # a quote: harmless once quoted right, but no alias needs one
    'a\\" -J-Dx=1',  # the old quoting made this a\\" -> closes the quote, -J-Dx=1 is an argv
    "-J-Djava.security.manager=x",  # the java launcher takes -J anywhere in keytool's argv
    "-alias",
    "x\ny",
    "x\r\ny",
    "x\x00y",
    "$(calc)",
    "`calc",
    "a;calc",
    "a&calc",
    "a|calc",
    "a>out",
    "%COMSPEC%",
    "a,b",  # keytool -list output is split on commas
    "..\\..\\windows",
    "a'b",
    " leading",
    "trailing ",
    "",
    "x" * 129,
    "sеpm",  # Cyrillic e: looks like an alias an operator would accept
]

ACCEPTED = [
    "sepm",
    "1",
    "tomcat",
    "Site SEPMA1",
    "le-2024.sepm.example.com",
    "{8A3F1C2D-0000-4BBB-9CCC-123456789ABC}",
    "site_b (dr)",
    "svc@corp",
    "x" * 128,
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_names_are_refused_with_what_they_are(value: str) -> None:
    with pytest.raises(UnsafeHostArgument) as refused:
        check_host_name(value, what="JKS alias")
    message = str(refused.value)
    assert message.startswith("JKS alias ")
    assert "letters, digits" in message


@pytest.mark.parametrize("value", ACCEPTED)
def test_plain_names_pass(value: str) -> None:
    assert check_host_name(value, what="replication partner") == value


@pytest.mark.parametrize(
    ("argument", "quoted"),
    [
        ("sepm", "sepm"),
        ("", '""'),
        ('a" -J-Dx=1', '"a\\" -J-Dx=1"'),
        ('a\\" -J-Dx=1', '"a\\\\\\" -J-Dx=1"'),
        ("C:\\Program Files (x86)\\SEPM\\", '"C:\\Program Files (x86)\\SEPM\\\\"'),
        ("C:\\a\\b", "C:\\a\\b"),
        ("a\\\\b c", '"a\\\\b c"'),
        ("tab\there", '"tab\there"'),
    ],
)
def test_windows_quoting_is_exact(argument: str, quoted: str) -> None:
    assert windows_quote(argument) == quoted


def split_like_windows(line: str) -> list[str]:
    """CommandLineToArgvW / the MSVC runtime's rules (2008+): what keytool.exe would see."""
    args: list[str] = []
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            break
        current, quoted, started = [], False, True
        while i < n and (quoted or line[i] not in " \t"):
            if line[i] == "\\":
                j = i
                while j < n and line[j] == "\\":
                    j += 1
                count = j - i
                if j < n and line[j] == '"':
                    current.append("\\" * (count // 2))
                    if count % 2:
                        current.append('"')
                        i = j + 1
                    else:
                        i = j
                else:
                    current.append("\\" * count)
                    i = j
            elif line[i] == '"':
                if quoted and i + 1 < n and line[i + 1] == '"':
                    current.append('"')
                    i += 2
                else:
                    quoted = not quoted
                    i += 1
            else:
                current.append(line[i])
                i += 1
        if started:
            args.append("".join(current))
    return args


def test_the_old_quoting_let_an_alias_add_a_jvm_option() -> None:
    """What issue 11 found: the alias became two arguments, the second a -J option."""
    alias = 'a\\" -J-Dx=1'
    old = '"-alias" ' + '"' + alias.replace('"', '\\"') + '"'
    assert "-J-Dx=1" in split_like_windows(old)
    assert split_like_windows(windows_command_line(["-alias", alias])) == ["-alias", alias]


@given(st.lists(st.text(alphabet=st.sampled_from('ab \t\\"-J='), max_size=12), max_size=5))
def test_any_argument_list_reaches_the_program_unchanged(arguments: list[str]) -> None:
    assert split_like_windows(windows_command_line(arguments)) == arguments


def _powershell_regex(name: str) -> str:
    """The single-quoted regex assigned to $script:<name> in CertrotateCommon.ps1."""
    found = re.search(rf"\$script:{name}\s*=\s*'((?:[^']|'')*)'", COMMON)
    assert found, f"CertrotateCommon.ps1 defines no $script:{name}"
    return found.group(1).replace("''", "'")


def test_the_script_checks_names_with_the_same_pattern() -> None:
    assert _powershell_regex("CertrotateNamePattern") == rf"^(?:{HOST_NAME_PATTERN})\z"
    # -cmatch: PowerShell's -match ignores case, which would let [A-Z] match more than ASCII.
    assert "-cnotmatch $script:CertrotateNamePattern" in COMMON


def _python(dotnet_regex: str) -> str:
    """.NET's end-of-string anchor \\z is Python's \\Z; the rest of these regexes read alike."""
    return dotnet_regex.replace(r"\z", r"\Z")


def _powershell_quote(argument: str) -> str:
    """ConvertTo-WindowsArgument of CertrotateCommon.ps1, its regexes run by Python's re."""
    bare = re.search(r"-cmatch '([^']+)'\) \{ return \$Value \}", COMMON)
    assert bare, "ConvertTo-WindowsArgument has no bare-word test"
    if re.search(_python(bare.group(1)), argument):
        return argument
    replacements = re.findall(r"-replace '([^']+)', '([^']+)'", COMMON)
    assert len(replacements) == 2, replacements
    escaped = argument
    for pattern, dotnet in replacements:
        # .NET replacement text: $1 is the group, a backslash is literal.
        python = re.sub(r"\$(\d)", r"\\g<\1>", dotnet.replace("\\", "\\\\"))
        escaped = re.sub(_python(pattern), python, escaped)
    return '"' + escaped + '"'


@given(st.text(alphabet=st.sampled_from('ab \t\\"-J='), max_size=16))
def test_the_script_quotes_like_the_reference(argument: str) -> None:
    assert _powershell_quote(argument) == windows_quote(argument)


def test_the_scripts_never_build_a_command_line_the_old_way() -> None:
    for script in scripts_directory().glob("*.ps1"):
        text = script.read_text("utf-8-sig")
        assert "-replace '\"', '\\\"'" not in text, script.name
        assert ".Arguments = " not in text or "Join-WindowsCommandLine" in text, script.name


def test_the_install_script_checks_the_alias_it_read_from_keytool() -> None:
    install = (scripts_directory() / "Install-SepmCertificate.ps1").read_text("utf-8-sig")
    read = install.index("$alias = $aliases[0]")
    checked = install.index("Assert-CertrotateName -Value $alias")
    used = install.index("'-alias', $alias")
    assert read < checked < used


def test_the_partner_scripts_check_the_partner_name_first() -> None:
    for name in ("Remove-SepmReplicationPartner.ps1", "Add-SepmReplicationPartner.ps1"):
        text = (scripts_directory() / name).read_text("utf-8-sig")
        checked = text.index("Assert-CertrotateName -Value $PartnerSiteName")
        assert checked < text.index("Invoke-ReplicationRecipe -Change")


class _NoVault:
    async def get(self, ref: str) -> dict[str, Any]:
        raise AssertionError("a refused name must not reach the vault or the host")


@pytest.mark.parametrize("partner", ['a\\" -J-Dx=1', "-J-Dx", "site-b\r\nrm"])
async def test_the_winrm_driver_refuses_a_hostile_partner_before_connecting(partner: str) -> None:
    server = ServerTarget(name="sepm-a1", address="10.0.0.1", version="14.3.9000")
    site = SiteTarget(
        site="site-a",
        version="14.3.9000",
        api_url="https://sepm-a1:8446/sepm/api/v1",
        credential_ref="sepm/site-a",
        servers=[server],
        host_ops=HostOpsTarget(driver="winrm", endpoint=None, credential_ref="winrm/site-a"),
    )
    ops = WinRMHostOperations(site, cast(Vault, _NoVault()))
    for call in (ops.delete_replication_partner, ops.add_replication_partner):
        with pytest.raises(HostOperationError) as refused:
            await call(site, partner, key="k")
        assert refused.value.code == "UNSAFE_NAME"
        assert not refused.value.retryable
