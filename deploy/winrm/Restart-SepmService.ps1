<#
.SYNOPSIS
    Restart one SEPM service (semsrv, semwebsrv or semapisrv) and wait until it is Running.

.DESCRIPTION
    Stop-Service, wait for Stopped, Start-Service, wait for Running, each within
    -TimeoutSeconds. Services that depend on it and were running are started again too (a
    forced stop takes them down with it). Exits non-zero with the reason, including the last
    Service Control Manager error for the service, when it does not come back.
    Restart in SEPM's order: semsrv, then semwebsrv, then semapisrv (14.0 and later only).
    Output: CERTROTATE-RESULT {"service", "status", "dependents_restarted"}.

    Idempotent: the same -IdempotencyKey restarts once.

    VERIFIED HERE: not run (no Windows host); reviewed only. The service names are SEPM's.
    CHECK ON A REAL SERVER: how long semsrv takes to stop on a loaded server (raise
    -TimeoutSeconds if needed), and the dependencies between the three services.

.EXAMPLE
    .\Restart-SepmService.ps1 -IdempotencyKey 'manual-restart-1' -Service semwebsrv
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string]$IdempotencyKey,
    [Parameter(Mandatory)][ValidateSet('semsrv', 'semwebsrv', 'semapisrv')][string]$Service,
    [ValidateRange(10, 3600)][int]$TimeoutSeconds = 300,
    [string]$StateDirectory
)
$ErrorActionPreference = 'Stop'
if (-not (Get-Command Write-CertrotateResult -ErrorAction SilentlyContinue)) {
    . (Join-Path $PSScriptRoot 'CertrotateCommon.ps1')
}

$operation = 'service.restart'
$state = Get-CertrotateStateDirectory -StateDirectory $StateDirectory
$done = Get-CompletedOperation -StateDirectory $state -IdempotencyKey $IdempotencyKey -Operation $operation
if ($done) { Write-CertrotateResult $done; return }

$controller = Get-Service -Name $Service -ErrorAction SilentlyContinue
if (-not $controller) {
    $hint = if ($Service -eq 'semapisrv') { ' (it exists from SEPM 14.0 on)' } else { '' }
    Stop-CertrotateOperation -Code 'SERVICE_NOT_AVAILABLE' -Message "There is no $Service service on $env:COMPUTERNAME$hint"
}
$timeout = [TimeSpan]::FromSeconds($TimeoutSeconds)
$dependents = @($controller.DependentServices | Where-Object { $_.Status -eq 'Running' } | ForEach-Object { $_.Name })

function Get-LastServiceError {
    param([string]$Name)
    $since = (Get-Date).AddMinutes(-15)
    $scmEvent = Get-WinEvent -FilterHashtable @{ LogName = 'System'; ProviderName = 'Service Control Manager'; StartTime = $since } -ErrorAction SilentlyContinue |
        Where-Object { $_.Id -in 7000, 7001, 7009, 7011, 7023, 7024, 7031, 7034 -and $_.Message -match [regex]::Escape($Name) } |
        Select-Object -First 1
    if ($scmEvent) { return " Service Control Manager: $($scmEvent.Message.Trim())" }
    return ''
}

function Wait-ServiceStatus {
    param([string]$Name, [System.ServiceProcess.ServiceControllerStatus]$Status, [string]$Code)
    $service = Get-Service -Name $Name
    # WaitForStatus throws System.ServiceProcess.TimeoutException (wrapped by PowerShell).
    try { $service.WaitForStatus($Status, $timeout) }
    catch {
        $service.Refresh()
        Stop-CertrotateOperation -Code $Code -Retryable `
            -Message ("The $Name service on $env:COMPUTERNAME is $($service.Status), not $Status, after $TimeoutSeconds s." + (Get-LastServiceError $Name))
    }
}

if ($controller.Status -ne 'Stopped') {
    Stop-Service -Name $Service -Force
    Wait-ServiceStatus -Name $Service -Status Stopped -Code 'SERVICE_STOP_FAILED'
}
try { Start-Service -Name $Service }
catch {
    Stop-CertrotateOperation -Code 'SERVICE_START_FAILED' -Retryable `
        -Message ("The $Service service on $env:COMPUTERNAME failed to start: $($_.Exception.Message)" + (Get-LastServiceError $Service))
}
Wait-ServiceStatus -Name $Service -Status Running -Code 'SERVICE_START_FAILED'
foreach ($dependent in $dependents) {
    if ((Get-Service -Name $dependent).Status -ne 'Running') {
        Start-Service -Name $dependent
        Wait-ServiceStatus -Name $dependent -Status Running -Code 'SERVICE_START_FAILED'
    }
}

$result = @{ service = $Service; status = 'Running'; dependents_restarted = $dependents }
Write-CertrotateResult (Complete-Operation -StateDirectory $state -IdempotencyKey $IdempotencyKey -Operation $operation -Result $result)
