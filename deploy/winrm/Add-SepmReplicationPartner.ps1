<#
.SYNOPSIS
    Re-add -PartnerSiteName as a replication partner of this SEPM site (step 7).

.DESCRIPTION
    Runs the site's validated "add" recipe (Invoke-ReplicationRecipe in CertrotateCommon.ps1),
    read from <StateDirectory>\replication-recipes.json (format in
    Remove-SepmReplicationPartner.ps1). Re-adding a partner OVERWRITES THE PARTNER SITE'S
    DATABASE with this site's: run it on the site whose data must win.
    Output: CERTROTATE-RESULT {"partner", "change": "added"}.
    certrotate's replication service then triggers replicatenow (content=false, logs=false)
    and waits for status SUCCEEDED over the REST API.

    Idempotent: the same -IdempotencyKey adds once.

    WHAT IS VERIFIED: nothing on a real server; no Windows host is reachable from where this
    was written. The wrapper (idempotency, recipe loading, timeout, exit codes) was reviewed.
    WHAT MUST BE CHECKED AGAINST A REAL SERVER, BEFORE USE:
      - Broadcom documents re-adding a partner in the console (Admin > Servers > Local Site >
        Add Existing Replication Partner) and in the Management Server Configuration Wizard.
        We found no documented unattended command line, so this script ships NO recipe and
        refuses to run (NOT_CONFIGURED) until an administrator captures one for their SEPM
        version (wizard / upgrade.bat tooling, or Broadcom support) and tests it on a lab site.
      - The partner's console credentials the recipe needs: keep them out of the recipe file
        (it is readable by Administrators only, but is not a vault).
    Until then, give this site the manual driver: certrotate then asks a person to do it.
    THE PARTNER'S SIDE: a partnership is configured on both sites of the pair, and certrotate
    changes both (this site first; on restore, the partner only after replication from this
    site SUCCEEDED). This script acts on this site only; the partner's side runs on the
    partner's servers, which this site's WinRM account does not reach, so the WinRM driver
    hands that side to a person (an operator task at the partner's console).

.EXAMPLE
    .\Add-SepmReplicationPartner.ps1 -IdempotencyKey 'manual-restore-1' -PartnerSiteName site-b
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string]$IdempotencyKey,
    [Parameter(Mandatory)][string]$PartnerSiteName,
    [string]$SepmHome,
    [string]$StateDirectory,
    [string]$RecipePath,
    [int]$TimeoutSeconds = 1800
)
$ErrorActionPreference = 'Stop'
if (-not (Get-Command Write-CertrotateResult -ErrorAction SilentlyContinue)) {
    . (Join-Path $PSScriptRoot 'CertrotateCommon.ps1')
}
Assert-CertrotateName -Value $PartnerSiteName -What 'The replication partner site name'

$operation = 'replication.partner.add'
$state = Get-CertrotateStateDirectory -StateDirectory $StateDirectory
$done = Get-CompletedOperation -StateDirectory $state -IdempotencyKey $IdempotencyKey -Operation $operation
if ($done) { Write-CertrotateResult $done; return }

$exitCode = Invoke-ReplicationRecipe -Change add -PartnerSiteName $PartnerSiteName `
    -SepmHome (Get-SepmHome -SepmHome $SepmHome) -StateDirectory $state -RecipePath $RecipePath `
    -TimeoutSeconds $TimeoutSeconds
$result = @{ partner = $PartnerSiteName; change = 'added'; exit_code = $exitCode }
Write-CertrotateResult (Complete-Operation -StateDirectory $state -IdempotencyKey $IdempotencyKey -Operation $operation -Result $result)
