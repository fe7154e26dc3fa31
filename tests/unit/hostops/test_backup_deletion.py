"""Deleting a certificate backup after retention, per driver: WinRM deletes only what its own
backup script made (the id is checked strictly before anything runs, and again on the host),
and the manual driver asks a person to delete exactly those files on that host."""

from __future__ import annotations

import re

import pytest

from certrotate_shared.hostops import HostOperationError, ManualTaskPending, task_id_for
from certrotate_shared.hostops.backup_refs import WINRM_BACKUP_ID_PATTERN
from certrotate_shared.hostops.manual import ManualHostOperations
from tests.unit.hostops.test_manual_driver import SERVER, SITE
from tests.unit.hostops.test_winrm_driver import SCRIPTS, FakeProtocol, driver, result, site

pytestmark = pytest.mark.unit

BACKUP_ID = "20260101T101500Z-1a2b3c4d"
WINRM_REF = f"winrm:{BACKUP_ID}:{'cd' * 32}"
SCRIPT = "Remove-SepmCertificateBackup.ps1"


@pytest.fixture(autouse=True)
def fresh_protocols() -> None:
    FakeProtocol.made = []
    FakeProtocol.reply = result()


async def test_winrm_runs_the_removal_script_with_the_backup_id_only() -> None:
    FakeProtocol.reply = result(backup_id=BACKUP_ID, deleted=True, already_gone=False)
    target = site()
    deleted = await driver(target).delete_certificate_backup(
        target.server("sepm-a2"), WINRM_REF, key="retention:s1:sepm-a2"
    )
    assert deleted is True
    (protocol,) = FakeProtocol.made
    doc = protocol.document()
    assert doc["name"] == SCRIPT
    assert doc["params"] == {"IdempotencyKey": "retention:s1:sepm-a2", "BackupId": BACKUP_ID}
    assert doc["secrets"] == {} and doc["blobs"] == {}
    assert protocol.options["endpoint"] == "http://sepm-a2.corp.test:5985/wsman"


@pytest.mark.parametrize("replayed", [False, True])
async def test_winrm_reports_a_backup_already_gone_as_deleted_earlier(replayed: bool) -> None:
    FakeProtocol.reply = result(
        backup_id=BACKUP_ID, deleted=False, already_gone=True, removed=[], replayed=replayed
    )
    target = site()
    ops = driver(target)
    assert await ops.delete_certificate_backup(target.servers[0], WINRM_REF, key="k") is False


@pytest.mark.parametrize(
    "ref",
    [
        "winrm:..\\..\\Windows:" + "cd" * 32,
        "winrm:20260101T101500Z-1a2b3c4d\\..\\x:" + "cd" * 32,
        "winrm:20260101T101500Z-1A2B3C4D:" + "cd" * 32,  # the script writes lower-case hex
        "winrm:20260101T101500Z-1a2b3c4d\n:" + "cd" * 32,
        "winrm:*:" + "cd" * 32,
        "winrm::" + "cd" * 32,
        "C:\\ProgramData\\certrotate\\backups\\20260101T101500Z-1a2b3c4d",
        "backup-3",  # the twin's, or another driver's
        "manual:task-0123456789abcdef0123:" + "cd" * 32,
    ],
)
async def test_winrm_refuses_anything_but_its_own_backup_id_before_connecting(ref: str) -> None:
    target = site()
    with pytest.raises(HostOperationError) as refused:
        await driver(target).delete_certificate_backup(target.servers[0], ref, key="k")
    assert refused.value.code == "NOT_A_CERTROTATE_BACKUP" and not refused.value.retryable
    assert FakeProtocol.made == []


def test_the_removal_script_checks_the_same_id_and_never_deletes_recursively() -> None:
    text = (SCRIPTS / SCRIPT).read_text("utf-8-sig")
    found = re.search(r"\$BackupIdPattern\s*=\s*'([^']+)'", text)
    assert found and found.group(1) == rf"^{WINRM_BACKUP_ID_PATTERN}\z"
    assert "-cnotmatch $BackupIdPattern" in text
    # Junctions or symbolic links planted in the backups folder must not redirect a delete.
    assert "ReparsePoint" in text
    assert "-Recurse" not in text
    assert "[Parameter(Mandatory)][string]$BackupId" in text
    assert "CHECK ON A REAL SERVER" in text
    # The backup script writes the ids this one accepts.
    backup = (SCRIPTS / "Backup-SepmCertificate.ps1").read_text("utf-8-sig")
    assert "ToString('yyyyMMddTHHmmssZ')" in backup and ".Substring(0, 8)" in backup


def _function(text: str, name: str) -> str:
    found = re.search(rf"^function {name} \{{\n(.*?)^\}}", text, re.MULTILINE | re.DOTALL)
    assert found, f"no function {name}"
    return found.group(1)


def test_a_backups_folder_or_backup_folder_deleted_by_hand_answers_already_gone() -> None:
    """Read from the script, not run (no PowerShell here): when someone deleted the backup's
    folder, or the whole backups folder, by hand, the script answers "already gone" (which
    the driver reads as False) instead of failing, recreates neither, and still refuses all it
    refused before."""
    text = (SCRIPTS / SCRIPT).read_text("utf-8-sig")
    body = text.split("#>", 1)[1]  # the code, after the header
    # Looking a folder up never stops the script on "not there", and only "not there" counts as
    # gone: an access-denied look-up must fail, or the backup (keystore and its password in
    # server.xml) would stay on disk while its record is dropped.
    present = _function(body, "Get-PresentItem")
    assert "catch [System.Management.Automation.ItemNotFoundException]" in present
    assert "-ErrorAction Stop" in present and "SilentlyContinue" not in present
    outside = body.replace(present, "")
    assert "Get-Item " not in outside and "Test-Path -LiteralPath $target" not in outside
    # The state helper makes only the folder of the idempotency markers: a deleted backups
    # folder is not recreated just to be found empty (other scripts still get all three).
    assert (
        "Get-CertrotateStateDirectory -StateDirectory $StateDirectory -Subfolders @('operations')"
        in body
    )
    common = (SCRIPTS / "CertrotateCommon.ps1").read_text("utf-8-sig")
    helper = _function(common, "Get-CertrotateStateDirectory")
    assert "[string[]]$Subfolders = @('operations', 'backups', 'staging')" in helper
    # The backups folder is looked up (and refused if a link) before the backup folder, and a
    # missing one of either is answered before anything is listed or removed.
    order = [
        "Test-Link (Get-PresentItem $state)",
        "$backupsItem = Get-PresentItem $backups",
        "if ($backupsItem -and (Test-Link $backupsItem))",
        "Get-PresentItem $target",
        "$result.already_gone = $true",
        "Test-Link $item",
        "Get-ChildItem -LiteralPath $target",
        "Remove-Item",
    ]
    positions = [body.find(step) for step in order]
    assert -1 not in positions, [s for s, at in zip(order, positions, strict=True) if at < 0]
    assert positions == sorted(positions)
    # Every refusal stays: a manifest naming this id, nothing unlisted, nothing but plain files.
    assert "[string]$manifest.backup_id -cne $BackupId" in body
    assert "which the backup did not put there" in body
    assert "is not a plain file" in body and "is not a plain folder" in body
    assert "[IO.Directory]::Delete($target, $false)" in body and "-Recurse" not in body


async def test_manual_deletion_names_the_host_and_each_file_then_completes_on_confirmation() -> (
    None
):
    ops = ManualHostOperations(SITE)
    with pytest.raises(ManualTaskPending) as pending:
        await ops.delete_certificate_backup(SERVER, WINRM_REF, key="retention:s1:sepm-a1")
    task = pending.value.task
    assert task.task_id == task_id_for("retention:s1:sepm-a1") and task.server == "sepm-a1"
    folder = f"C:\\ProgramData\\certrotate\\backups\\{BACKUP_ID}"
    for name in ("keystore.jks", "server.xml", "server.crt", "server.key", "manifest.json"):
        assert f"{folder}\\{name}" in task.instructions
    assert "sepm-a1" in task.title and "sepm-a1" in task.instructions
    assert "Server Private Key Backup" in task.instructions  # SEPM's own: not to be touched
    assert "cd" * 32 in task.instructions  # which certificate the backup holds

    confirmed = ManualHostOperations(SITE, confirmed_tasks={task.task_id})
    assert await confirmed.delete_certificate_backup(SERVER, WINRM_REF, key="retention:s1:sepm-a1")


async def test_manual_deletion_of_a_manual_backup_points_to_the_folder_of_its_backup_task() -> None:
    backup_task = task_id_for("saga-1:update:sepm-a1:1:backup")
    ref = f"manual:{backup_task}:{'ab' * 32}"
    with pytest.raises(ManualTaskPending) as pending:
        await ManualHostOperations(SITE).delete_certificate_backup(SERVER, ref, key="r")
    text = pending.value.task.instructions
    assert f"folder named {backup_task}" in text
    for name in ("keystore.jks", "server.xml", "server.crt", "server.key"):
        assert name in text


async def test_manual_deletion_refuses_a_record_it_cannot_name_precisely() -> None:
    with pytest.raises(HostOperationError) as refused:
        await ManualHostOperations(SITE).delete_certificate_backup(
            SERVER, "winrm:..\\..\\x:" + "cd" * 32, key="r"
        )
    assert refused.value.code == "NOT_A_CERTROTATE_BACKUP"


def test_every_driver_offers_the_deletion() -> None:
    from certrotate_shared.hostops.measured import KINDS

    assert "delete_certificate_backup" in KINDS
