<#
.SYNOPSIS
    Back up both SEPM certificate stores (Tomcat keystore.jks + server.xml, Apache server.crt + server.key).

.DESCRIPTION
    Copies <SEPM>\tomcat\etc\keystore.jks, <SEPM>\tomcat\conf\server.xml (which holds the
    keystore password, keystorePass), <SEPM>\apache\conf\ssl\server.crt and server.key into
    <StateDirectory>\backups\<UTC time>-<key hash>, with a manifest of their sha256, and observes
    the certificate served on -ProbePort (8443).
    Output: CERTROTATE-RESULT {"backup_id", "fingerprint_sha256", "backup_path", ...}.
    SEPM's record of the certificate (the management server list) is put back by giving the
    saved keystore.jks to the console's Manage Server Certificate > Update the server
    certificate: certrotate's rollback task says so. Restore-SepmCertificate.ps1 -BackupId
    <backup_id> puts the four files back exactly (the stores only, not the record).

    This does not replace SEPM's own recovery backup of the server's private key, which the
    product keeps by itself; it is the exact copy certrotate's rollback needs.

    Idempotent: the same -IdempotencyKey returns the first backup instead of making another.

    VERIFIED HERE: not run (no Windows host); reviewed only.
    CHECK ON A REAL SERVER: the four file locations on your SEPM version, and that 8443 (the
    console port) presents the same certificate as 443, 8445 and 8446 before the rotation.

.EXAMPLE
    .\Backup-SepmCertificate.ps1 -IdempotencyKey 'manual-2024-05-01'
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string]$IdempotencyKey,
    [string]$SepmHome,
    [string]$StateDirectory,
    [int]$ProbePort = 8443
)
$ErrorActionPreference = 'Stop'
if (-not (Get-Command Write-CertrotateResult -ErrorAction SilentlyContinue)) {
    . (Join-Path $PSScriptRoot 'CertrotateCommon.ps1')
}

$operation = 'certificate.backup'
$state = Get-CertrotateStateDirectory -StateDirectory $StateDirectory
$done = Get-CompletedOperation -StateDirectory $state -IdempotencyKey $IdempotencyKey -Operation $operation
if ($done) { Write-CertrotateResult $done; return }

$paths = Get-SepmPaths -SepmHome (Get-SepmHome -SepmHome $SepmHome)
$files = Get-SepmStoreFiles -Paths $paths
foreach ($file in $files) {
    if (-not (Test-Path -LiteralPath $file)) {
        Stop-CertrotateOperation -Code 'SEPM_FILE_MISSING' -Message "$file does not exist"
    }
}

$served = Get-ServedFingerprint -Port $ProbePort
$keyHash = (Get-Sha256Hex -Bytes ([Text.Encoding]::UTF8.GetBytes($IdempotencyKey))).Substring(0, 8)
$backupId = '{0}-{1}' -f (Get-Date).ToUniversalTime().ToString('yyyyMMddTHHmmssZ'), $keyHash
$target = Join-Path (Join-Path $state 'backups') $backupId
New-Item -ItemType Directory -Path $target | Out-Null

$manifest = @{ backup_id = $backupId; served_fingerprint_sha256 = $served; files = @{} }
foreach ($file in $files) {
    $copy = Join-Path $target (Split-Path -Leaf $file)
    Copy-Item -LiteralPath $file -Destination $copy
    $original = Get-Sha256Hex -Bytes ([IO.File]::ReadAllBytes($file))
    $copied = Get-Sha256Hex -Bytes ([IO.File]::ReadAllBytes($copy))
    if ($original -ne $copied) {
        Stop-CertrotateOperation -Code 'BACKUP_CORRUPT' -Retryable -Message "The copy of $file differs from the original"
    }
    $manifest.files[(Split-Path -Leaf $file)] = @{ source = $file; sha256 = $copied }
}
[IO.File]::WriteAllText((Join-Path $target 'manifest.json'), (ConvertTo-Json -Depth 5 $manifest),
    (New-Object Text.UTF8Encoding $false))

$result = @{
    backup_id = $backupId
    backup_path = $target
    fingerprint_sha256 = $served
    keystore_sha256 = $manifest.files['keystore.jks'].sha256
}
Write-CertrotateResult (Complete-Operation -StateDirectory $state -IdempotencyKey $IdempotencyKey -Operation $operation -Result $result)
