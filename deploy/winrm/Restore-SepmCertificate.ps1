<#
.SYNOPSIS
    Put back the four store files saved by Backup-SepmCertificate.ps1 (both stores, not SEPM's record).

.DESCRIPTION
    Checks each saved file against the backup's manifest (sha256), then replaces
    <SEPM>\tomcat\etc\keystore.jks, <SEPM>\tomcat\conf\server.xml and
    <SEPM>\apache\conf\ssl\server.crt + server.key with them. The old certificate is served
    again only after restarting semsrv, semwebsrv and (14.0+) semapisrv.
    SEPM's record of the certificate (what clients get in the management server list) is NOT
    put back by files: give the saved keystore.jks to the console's Manage Server Certificate >
    Update the server certificate. certrotate's WinRM driver therefore hands rollbacks to a
    person (the manual driver) unless the site opted into file-level swaps.
    Output: CERTROTATE-RESULT {"backup_id", "restored": [...], "restart_required": [...]}.

    Idempotent: the same -IdempotencyKey does the restore once.

    VERIFIED HERE: not run (no Windows host); reviewed only.
    CHECK ON A REAL SERVER: that no other SEPM file caches the keystore password (for example
    a properties file next to server.xml); if one does, it must be backed up and restored too.

.EXAMPLE
    .\Restore-SepmCertificate.ps1 -IdempotencyKey 'rollback-1' -BackupId 20240501T101500Z-1a2b3c4d
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string]$IdempotencyKey,
    [Parameter(Mandatory)][string]$BackupId,
    [string]$SepmHome,
    [string]$StateDirectory
)
$ErrorActionPreference = 'Stop'
if (-not (Get-Command Write-CertrotateResult -ErrorAction SilentlyContinue)) {
    . (Join-Path $PSScriptRoot 'CertrotateCommon.ps1')
}

$operation = 'certificate.restore'
$state = Get-CertrotateStateDirectory -StateDirectory $StateDirectory
$done = Get-CompletedOperation -StateDirectory $state -IdempotencyKey $IdempotencyKey -Operation $operation
if ($done) { Write-CertrotateResult $done; return }

if ($BackupId -notmatch '^[0-9TZ]+-[0-9a-f]{8}$') {
    Stop-CertrotateOperation -Code 'NOT_FOUND' -Message "'$BackupId' is not a certrotate backup id"
}
$source = Join-Path (Join-Path $state 'backups') $BackupId
$manifestPath = Join-Path $source 'manifest.json'
if (-not (Test-Path -LiteralPath $manifestPath)) {
    Stop-CertrotateOperation -Code 'NOT_FOUND' -Message "No backup $BackupId on $env:COMPUTERNAME"
}
$manifest = Get-Content -LiteralPath $manifestPath -Raw -Encoding UTF8 | ConvertFrom-Json
$paths = Get-SepmPaths -SepmHome (Get-SepmHome -SepmHome $SepmHome)
$restored = @()
$files = Get-SepmStoreFiles -Paths $paths
foreach ($file in $files) {
    $name = Split-Path -Leaf $file
    $saved = Join-Path $source $name
    $expected = $manifest.files.$name.sha256
    if (-not (Test-Path -LiteralPath $saved) -or
        (Get-Sha256Hex -Bytes ([IO.File]::ReadAllBytes($saved))) -ne $expected) {
        Stop-CertrotateOperation -Code 'BACKUP_CORRUPT' -Message "$saved is missing or does not match its manifest"
    }
}
# Staged next to each target (so each takes its folder's permissions), then renamed over it.
foreach ($file in $files) {
    Copy-Item -LiteralPath (Join-Path $source (Split-Path -Leaf $file)) -Destination "$file.certrotate-restore" -Force
}
foreach ($file in $files) {
    Move-Item -LiteralPath "$file.certrotate-restore" -Destination $file -Force
    $restored += $file
}

$result = @{
    backup_id = $BackupId
    restored = $restored
    fingerprint_sha256 = $manifest.served_fingerprint_sha256
    restart_required = @('semsrv', 'semwebsrv', 'semapisrv')
}
Write-CertrotateResult (Complete-Operation -StateDirectory $state -IdempotencyKey $IdempotencyKey -Operation $operation -Result $result)
