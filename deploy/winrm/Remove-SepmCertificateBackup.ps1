<#
.SYNOPSIS
    Delete one certificate backup made by Backup-SepmCertificate.ps1, once its rotation's retention is over.

.DESCRIPTION
    Deletes <StateDirectory>\backups\<BackupId>: the files its manifest.json lists (keystore.jks,
    server.xml, server.crt, server.key), then the manifest, then the empty folder. Nothing else:
    - the id must be exactly what the backup script writes (UTC yyyyMMddTHHmmssZ, "-", 8
      lower-case hex digits), so it cannot name a path;
    - the folder must be a direct child of the backups folder and a real folder, not a junction
      or a symbolic link (neither may the state or backups folder be one);
    - its manifest must name this backup id, and every entry of the folder must be a plain file
      the manifest lists (or the manifest itself); anything else stops the deletion before a
      single file is removed: it is not certrotate's to delete.
    A backup already gone counts as deleted (deleted = false, already_gone = true), so a
    deletion retried after a crash is not an error, and neither is a backup folder, or the
    whole backups folder, that someone deleted by hand (neither is recreated). Only "not found"
    counts as gone: a folder that cannot be read stops the deletion. SEPM's own "Server Private
    Key Backup" and the live stores are never touched. Folders are removed only when empty (no
    recursive delete).
    Output: CERTROTATE-RESULT {"backup_id", "deleted", "already_gone", "removed": [...]}.

    Idempotent: the same -IdempotencyKey returns the first result without acting again.

    VERIFIED HERE: not run (no Windows host); reviewed only.
    CHECK ON A REAL SERVER: that the backups were made under the default state directory
    (%ProgramData%\certrotate\backups) or pass -StateDirectory, and that the WinRM account can
    delete there (the backup script left only SYSTEM and Administrators on the folder); that a
    deleted backups folder answers already_gone (Get-Item -ErrorAction Stop caught as
    ItemNotFoundException), and a folder the account may not read fails instead.

.EXAMPLE
    .\Remove-SepmCertificateBackup.ps1 -IdempotencyKey 'purge-1' -BackupId 20240501T101500Z-1a2b3c4d
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string]$IdempotencyKey,
    [Parameter(Mandatory)][string]$BackupId,
    [string]$StateDirectory
)
$ErrorActionPreference = 'Stop'
if (-not (Get-Command Write-CertrotateResult -ErrorAction SilentlyContinue)) {
    . (Join-Path $PSScriptRoot 'CertrotateCommon.ps1')
}

# The same pattern as shared/certrotate_shared/hostops/backup_refs.py (a unit test compares
# them). -cnotmatch: case-sensitive; \z, not $, which would accept a trailing newline.
$BackupIdPattern = '^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}\z'
if ($BackupId -cnotmatch $BackupIdPattern) {
    Stop-CertrotateOperation -Code 'NOT_A_CERTROTATE_BACKUP' `
        -Message "'$BackupId' is not a certrotate backup id; nothing was deleted"
}

function Stop-NotOurs {
    param([Parameter(Mandatory)][string]$Why)
    Stop-CertrotateOperation -Code 'NOT_A_CERTROTATE_BACKUP' -Message "$Why; nothing was deleted"
}

function Test-Link {
    param([Parameter(Mandatory)]$Item)
    return [bool]($Item.Attributes -band [IO.FileAttributes]::ReparsePoint)
}

function Get-PresentItem {
    # The item, or $null when nothing is there. Only "not found" is absence: any other failure
    # (access denied) stops the script, so a backup it cannot see is never reported as gone.
    param([Parameter(Mandatory)][string]$Path)
    try { return Get-Item -LiteralPath $Path -Force -ErrorAction Stop }
    catch [System.Management.Automation.ItemNotFoundException] { return $null }
}

$operation = 'certificate.backup.delete'
# Only the folder of the idempotency markers is made: a backups folder deleted by hand is not
# recreated just to be found empty.
$state = Get-CertrotateStateDirectory -StateDirectory $StateDirectory -Subfolders @('operations')
$done = Get-CompletedOperation -StateDirectory $state -IdempotencyKey $IdempotencyKey -Operation $operation
if ($done) { Write-CertrotateResult $done; return }

if (Test-Link (Get-PresentItem $state)) { Stop-NotOurs "$state is a junction or a link" }
$backups = [IO.Path]::GetFullPath((Join-Path $state 'backups')).TrimEnd('\')
$target = [IO.Path]::GetFullPath((Join-Path $backups $BackupId))
if ([IO.Path]::GetDirectoryName($target) -ne $backups) { Stop-NotOurs "$target is not in $backups" }

$result = @{ backup_id = $BackupId; deleted = $false; already_gone = $false; removed = @() }
$backupsItem = Get-PresentItem $backups
if ($backupsItem -and (Test-Link $backupsItem)) { Stop-NotOurs "$backups is a junction or a link" }
$item = if ($backupsItem) { Get-PresentItem $target } else { $null }
if (-not $item) {
    # The backup's folder, or the whole backups folder, is gone (a retry, or a person).
    $result.already_gone = $true
    Write-CertrotateResult (Complete-Operation -StateDirectory $state -IdempotencyKey $IdempotencyKey -Operation $operation -Result $result)
    return
}
if (-not $item.PSIsContainer -or (Test-Link $item)) { Stop-NotOurs "$target is not a plain folder" }

$entries = @(Get-ChildItem -LiteralPath $target -Force)
if ($entries.Count -gt 0) {
    $manifestPath = Join-Path $target 'manifest.json'
    if (-not (Test-Path -LiteralPath $manifestPath -PathType Leaf)) {
        Stop-NotOurs "$target holds no manifest.json (not a finished certrotate backup; check it by hand)"
    }
    $manifest = Get-Content -LiteralPath $manifestPath -Raw -Encoding UTF8 | ConvertFrom-Json
    if ([string]$manifest.backup_id -cne $BackupId) { Stop-NotOurs "the manifest in $target names another backup" }
    $allowed = @('keystore.jks', 'server.xml', 'server.crt', 'server.key')
    $listed = @($manifest.files.PSObject.Properties.Name)
    foreach ($name in $listed) {
        if ($allowed -cnotcontains $name) { Stop-NotOurs "the manifest in $target lists '$name'" }
    }
    foreach ($entry in $entries) {
        if ($entry.PSIsContainer -or (Test-Link $entry)) { Stop-NotOurs "$($entry.FullName) is not a plain file" }
        if ($entry.Name -cne 'manifest.json' -and $listed -cnotcontains $entry.Name) {
            Stop-NotOurs "$target holds $($entry.Name), which the backup did not put there"
        }
    }
    # The manifest goes last: a deletion cut short is recognised again by it.
    foreach ($entry in @($entries | Where-Object { $_.Name -cne 'manifest.json' })) {
        Remove-Item -LiteralPath $entry.FullName -Force
        $result.removed += $entry.FullName
    }
    Remove-Item -LiteralPath $manifestPath -Force
    $result.removed += $manifestPath
}
# Not recursive: the folder is empty now, and a folder that is not empty makes this fail.
[IO.Directory]::Delete($target, $false)
$result.deleted = $true
Write-CertrotateResult (Complete-Operation -StateDirectory $state -IdempotencyKey $IdempotencyKey -Operation $operation -Result $result)
