<#
.SYNOPSIS
    Delete the replication partnership between this SEPM site and -PartnerSiteName (step 1).

.DESCRIPTION
    Runs the site's validated "remove" recipe (Invoke-ReplicationRecipe in
    CertrotateCommon.ps1), read from <StateDirectory>\replication-recipes.json:
        { "remove": { "command": "{{SEPM_HOME}}\\bin\\<tool>.exe",
                      "arguments": ["...", "{{PROPERTIES}}"],
                      "properties": ["<key>={{PARTNER_SITE}}", "..."] },
          "add":    { ... } }
    Output: CERTROTATE-RESULT {"partner", "change": "removed"}.
    certrotate's replication service then checks /replication/status over the REST API:
    the partner must be gone from replicationPartnerStatusList.

    Idempotent: the same -IdempotencyKey deletes once.

    WHAT IS VERIFIED: nothing on a real server; no Windows host is reachable from where this
    was written. The wrapper (idempotency, recipe loading, timeout, exit codes) was reviewed.
    WHAT MUST BE CHECKED AGAINST A REAL SERVER, BEFORE USE:
      - Broadcom documents deleting a partner in the console (Admin > Servers > the partner
        site > Delete Replication Partner). We found no documented command line for it, so
        this script ships NO recipe and refuses to run (NOT_CONFIGURED) until an administrator
        captures one with the Management Server Configuration Wizard / upgrade.bat tooling of
        their SEPM version, or from Broadcom support, and tests it on a lab site.
      - That the recipe's program returns a non-zero exit code when it fails.
    Until then, give this site the manual driver: certrotate then asks a person to do it.
    THE PARTNER'S SIDE: a partnership is configured on both sites of the pair, and certrotate
    changes both (this site first; on restore, the partner only after replication from this
    site SUCCEEDED). This script acts on this site only; the partner's side runs on the
    partner's servers, which this site's WinRM account does not reach, so the WinRM driver
    hands that side to a person (an operator task at the partner's console).

.EXAMPLE
    .\Remove-SepmReplicationPartner.ps1 -IdempotencyKey 'manual-break-1' -PartnerSiteName site-b
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

$operation = 'replication.partner.delete'
$state = Get-CertrotateStateDirectory -StateDirectory $StateDirectory
$done = Get-CompletedOperation -StateDirectory $state -IdempotencyKey $IdempotencyKey -Operation $operation
if ($done) { Write-CertrotateResult $done; return }

$exitCode = Invoke-ReplicationRecipe -Change remove -PartnerSiteName $PartnerSiteName `
    -SepmHome (Get-SepmHome -SepmHome $SepmHome) -StateDirectory $state -RecipePath $RecipePath `
    -TimeoutSeconds $TimeoutSeconds
$result = @{ partner = $PartnerSiteName; change = 'removed'; exit_code = $exitCode }
Write-CertrotateResult (Complete-Operation -StateDirectory $state -IdempotencyKey $IdempotencyKey -Operation $operation -Result $result)
