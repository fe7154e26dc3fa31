<#
.SYNOPSIS
    Helpers shared by the certrotate host-operation scripts (Windows PowerShell 5.1+).

.DESCRIPTION
    certrotate's WinRM driver sends this file ahead of every script; an administrator running a
    script by hand gets it dot-sourced from the same folder. Nothing here touches secrets except
    ConvertFrom-CertrotateSecureString, which materialises a password only where SEPM needs it
    in clear (server.xml, keytool's environment).

    Results: each script ends with Write-CertrotateResult, one line "CERTROTATE-RESULT {json}".
    Failures: Stop-CertrotateOperation throws an exception carrying a code and whether a retry
    can help; the driver's bootstrap turns it into "CERTROTATE-ERROR {json}" and exit code 1.

    Idempotency: every operation takes the caller's idempotency key. Its result is kept in a
    marker file <StateDirectory>\operations\<sha256 of key>.json; a repeated key returns the
    recorded result (with replayed = true) without acting again.

    VERIFIED HERE: nothing was run; no Windows host is reachable from where this was written.
    The logic was reviewed, and the Python side is unit-tested for what it sends.
    CHECK ON A REAL SERVER: the SEPM install-directory registry value (Get-SepmHome), and that
    the TLS probe (Get-ServedFingerprint) completes against SEPM's Tomcat on 8443.
#>

$script:CertrotateDefaultState = Join-Path $env:ProgramData 'certrotate'

function Stop-CertrotateOperation {
    param(
        [Parameter(Mandatory)][string]$Code,
        [Parameter(Mandatory)][string]$Message,
        [switch]$Retryable
    )
    $exception = New-Object System.InvalidOperationException $Message
    $exception.Data['certrotate.code'] = $Code
    $exception.Data['certrotate.retryable'] = [bool]$Retryable
    throw $exception
}

function Write-CertrotateResult {
    param([Parameter(Mandatory)][hashtable]$Result)
    [Console]::Out.WriteLine('CERTROTATE-RESULT ' + (ConvertTo-Json -Compress -Depth 5 $Result))
}

function Get-SepmHome {
    param([string]$SepmHome)
    if ($SepmHome) {
        if (-not (Test-Path -LiteralPath $SepmHome -PathType Container)) {
            Stop-CertrotateOperation -Code 'SEPM_NOT_FOUND' -Message "SEPM is not installed in '$SepmHome'"
        }
        return $SepmHome
    }
    # CHECK ON A REAL SERVER: the registry key and value SEPM's installer writes.
    foreach ($key in @(
            'HKLM:\SOFTWARE\WOW6432Node\Symantec\Symantec Endpoint Protection\SEPM',
            'HKLM:\SOFTWARE\Symantec\Symantec Endpoint Protection\SEPM')) {
        $item = Get-ItemProperty -LiteralPath $key -ErrorAction SilentlyContinue
        if ($item -and ($item.PSObject.Properties.Name -contains 'TargetDir') -and
            (Test-Path -LiteralPath $item.TargetDir -PathType Container)) {
            return $item.TargetDir.TrimEnd('\')
        }
    }
    $default = Join-Path ${env:ProgramFiles(x86)} 'Symantec\Symantec Endpoint Protection Manager'
    if (Test-Path -LiteralPath $default -PathType Container) { return $default }
    Stop-CertrotateOperation -Code 'SEPM_NOT_FOUND' `
        -Message 'Symantec Endpoint Protection Manager was not found; pass -SepmHome (vault entry sepm_home)'
}

function Get-SepmPaths {
    # The server certificate is stored twice (Broadcom KB 158445): Tomcat's keystore (8443,
    # 8446; its password in server.xml) and Apache's PEM pair (443, 8445).
    param([Parameter(Mandatory)][string]$SepmHome)
    [pscustomobject]@{
        Keystore          = Join-Path $SepmHome 'tomcat\etc\keystore.jks'
        ServerXml         = Join-Path $SepmHome 'tomcat\conf\server.xml'
        ApacheCertificate = Join-Path $SepmHome 'apache\conf\ssl\server.crt'
        ApacheKey         = Join-Path $SepmHome 'apache\conf\ssl\server.key'
        # CHECK ON A REAL SERVER: the JRE SEPM ships (keytool) lives here on 14.x.
        Keytool           = Join-Path $SepmHome 'jre\bin\keytool.exe'
        # CHECK ON A REAL SERVER: the openssl.exe of SEPM's Apache build.
        Openssl           = Join-Path $SepmHome 'apache\bin\openssl.exe'
    }
}

function Get-SepmStoreFiles {
    # Everything a backup must hold and a restore must put back, in that order.
    param([Parameter(Mandatory)]$Paths)
    return @($Paths.Keystore, $Paths.ServerXml, $Paths.ApacheCertificate, $Paths.ApacheKey)
}

function Get-CertrotateStateDirectory {
    # Makes the state directory and the folders a script writes to (-Subfolders: a script that
    # only deletes backups asks for 'operations', its idempotency markers, alone).
    param([string]$StateDirectory, [string[]]$Subfolders = @('operations', 'backups', 'staging'))
    if (-not $StateDirectory) { $StateDirectory = $script:CertrotateDefaultState }
    foreach ($sub in @('') + $Subfolders) {
        $path = Join-Path $StateDirectory $sub
        if (-not (Test-Path -LiteralPath $path)) { New-Item -ItemType Directory -Path $path | Out-Null }
    }
    Protect-CertrotatePath -Path $StateDirectory
    return $StateDirectory
}

function Protect-CertrotatePath {
    # Only SYSTEM and Administrators: backups hold keystores and server.xml (keystorePass).
    param([Parameter(Mandatory)][string]$Path)
    $acl = Get-Acl -LiteralPath $Path
    $acl.SetAccessRuleProtection($true, $false)
    foreach ($rule in @($acl.Access)) { [void]$acl.RemoveAccessRule($rule) }
    foreach ($sid in @('S-1-5-18', 'S-1-5-32-544')) {
        $identity = New-Object System.Security.Principal.SecurityIdentifier $sid
        $rule = New-Object System.Security.AccessControl.FileSystemAccessRule(
            $identity, 'FullControl', 'ContainerInherit,ObjectInherit', 'None', 'Allow')
        $acl.AddAccessRule($rule)
    }
    Set-Acl -LiteralPath $Path -AclObject $acl
}

function Get-Sha256Hex {
    param([Parameter(Mandatory)][byte[]]$Bytes)
    $sha = [System.Security.Cryptography.SHA256]::Create()
    try { return (($sha.ComputeHash($Bytes) | ForEach-Object { $_.ToString('x2') }) -join '') }
    finally { $sha.Dispose() }
}

function Get-OperationMarker {
    param([Parameter(Mandatory)][string]$StateDirectory, [Parameter(Mandatory)][string]$IdempotencyKey)
    $name = Get-Sha256Hex -Bytes ([Text.Encoding]::UTF8.GetBytes($IdempotencyKey))
    return Join-Path (Join-Path $StateDirectory 'operations') "$name.json"
}

function Get-CompletedOperation {
    # The recorded result of an earlier run with this key, or $null.
    param(
        [Parameter(Mandatory)][string]$StateDirectory,
        [Parameter(Mandatory)][string]$IdempotencyKey,
        [Parameter(Mandatory)][string]$Operation
    )
    $marker = Get-OperationMarker -StateDirectory $StateDirectory -IdempotencyKey $IdempotencyKey
    if (-not (Test-Path -LiteralPath $marker)) { return $null }
    $recorded = Get-Content -LiteralPath $marker -Raw -Encoding UTF8 | ConvertFrom-Json
    if ($recorded.operation -ne $Operation) {
        Stop-CertrotateOperation -Code 'IDEMPOTENCY_KEY_REUSED' `
            -Message "Idempotency key '$IdempotencyKey' was used for $($recorded.operation)"
    }
    $result = @{}
    foreach ($property in $recorded.result.PSObject.Properties) { $result[$property.Name] = $property.Value }
    $result['replayed'] = $true
    return $result
}

function Complete-Operation {
    # Record the result under the key (write then rename, so a crash leaves no half marker).
    param(
        [Parameter(Mandatory)][string]$StateDirectory,
        [Parameter(Mandatory)][string]$IdempotencyKey,
        [Parameter(Mandatory)][string]$Operation,
        [Parameter(Mandatory)][hashtable]$Result
    )
    $marker = Get-OperationMarker -StateDirectory $StateDirectory -IdempotencyKey $IdempotencyKey
    $record = @{
        operation = $Operation
        idempotency_key = $IdempotencyKey
        completed_at = (Get-Date).ToUniversalTime().ToString('o')
        result = $Result
    }
    $temporary = "$marker.tmp"
    [IO.File]::WriteAllText($temporary, (ConvertTo-Json -Depth 5 $record), (New-Object Text.UTF8Encoding $false))
    Move-Item -LiteralPath $temporary -Destination $marker -Force
    $Result['replayed'] = $false
    return $Result
}

function ConvertFrom-CertrotateSecureString {
    # Clear text only at the point of use; a .NET call, so module logging records no binding.
    param([Parameter(Mandatory)][System.Security.SecureString]$Secure)
    return (New-Object System.Net.NetworkCredential('', $Secure)).Password
}

function Get-ServedFingerprint {
    # sha256 of the certificate presented on a local TLS port; an observation, not a trust check.
    param([int]$Port = 8443, [string]$HostName = 'localhost', [int]$TimeoutSeconds = 10)
    $client = New-Object System.Net.Sockets.TcpClient
    try {
        $connect = $client.BeginConnect($HostName, $Port, $null, $null)
        if (-not $connect.AsyncWaitHandle.WaitOne([TimeSpan]::FromSeconds($TimeoutSeconds))) {
            Stop-CertrotateOperation -Code 'PORT_CLOSED' -Retryable `
                -Message "Nothing answered on ${HostName}:$Port within $TimeoutSeconds s"
        }
        try { $client.EndConnect($connect) }
        catch {
            Stop-CertrotateOperation -Code 'PORT_CLOSED' -Retryable `
                -Message "${HostName}:$Port refused the connection (is semwebsrv running?)"
        }
        $accept = [System.Net.Security.RemoteCertificateValidationCallback] { param($s, $c, $ch, $e) $true }
        $stream = New-Object System.Net.Security.SslStream($client.GetStream(), $false, $accept)
        try {
            $stream.AuthenticateAsClient($HostName)
            return Get-Sha256Hex -Bytes $stream.RemoteCertificate.GetRawCertData()
        } finally { $stream.Dispose() }
    } finally { $client.Close() }
}

# Names that reach a program's command line (a JKS alias, a partner site name) must match this,
# whole: letters and digits (or braces) first and last (never "-": the java launcher behind
# keytool takes any "-J..." argument as a JVM option), and no quote, backslash, comma or shell
# character.
# The same pattern as shared/certrotate_shared/hostops/arguments.py (a unit test compares them).
$script:CertrotateNamePattern = '^(?:[A-Za-z0-9{](?:[A-Za-z0-9 ._@(){}-]{0,126}[A-Za-z0-9._@(){}-])?)\z'

function Assert-CertrotateName {
    # -cnotmatch: a case-insensitive match would let [A-Z] accept non-ASCII letters.
    param([Parameter(Mandatory)][AllowEmptyString()][string]$Value, [Parameter(Mandatory)][string]$What)
    if ($Value -cnotmatch $script:CertrotateNamePattern) {
        $shown = if ($Value.Length -gt 80) { $Value.Substring(0, 80) } else { $Value }
        Stop-CertrotateOperation -Code 'UNSAFE_NAME' -Message ("$What '$shown' is refused: it may hold only " +
            'letters, digits, spaces and . _ - @ ( ) { }, starting with a letter, a digit or {, at most 128 characters ' +
            '(it would be passed to a program on this server)')
    }
}

function ConvertTo-WindowsArgument {
    # One argument as the program's C runtime splits it back (CommandLineToArgvW rules): inside
    # quotes, backslashes are literal except before a quote, so the run before an escaped
    # quote and the run before the closing quote are doubled.
    param([Parameter(Mandatory)][AllowEmptyString()][string]$Value)
    if ($Value.Contains([string][char]0)) {
        Stop-CertrotateOperation -Code 'UNSAFE_NAME' -Message 'An argument cannot hold a NUL character'
    }
    if ($Value -cmatch '^[^\s"]+\z') { return $Value }
    $escaped = $Value -replace '(\\*)"', '$1$1\"'
    $escaped = $escaped -replace '(\\+)\z', '$1$1'
    return '"' + $escaped + '"'
}

function Join-WindowsCommandLine {
    # .NET Framework's ProcessStartInfo takes one command-line string (no ArgumentList before
    # .NET Core 2.1), and Windows PowerShell 5.1's "& exe @args" mis-quotes embedded quotes.
    param([Parameter(Mandatory)][AllowEmptyCollection()][AllowEmptyString()][string[]]$Arguments)
    return (@($Arguments | ForEach-Object { ConvertTo-WindowsArgument -Value $_ }) -join ' ')
}

function Invoke-Keytool {
    # keytool reads passwords from the environment (-storepass:env), never from its command line.
    param(
        [Parameter(Mandatory)][string]$Keytool,
        [Parameter(Mandatory)][string[]]$Arguments,
        [Parameter(Mandatory)][System.Security.SecureString]$Password
    )
    foreach ($argument in $Arguments) {
        # Only certrotate's own options start with "-", and none of them is a JVM option.
        if ($argument.StartsWith('-J')) {
            Stop-CertrotateOperation -Code 'UNSAFE_NAME' -Message "keytool is never given a JVM option ($argument)"
        }
    }
    Invoke-SepmTool -Program $Keytool -Arguments $Arguments -Password $Password
}

function Invoke-SepmTool {
    # keytool or openssl, the password in the environment (CERTROTATE_KEYSTORE_PASS).
    param(
        [Parameter(Mandatory)][string]$Program,
        [Parameter(Mandatory)][string[]]$Arguments,
        [Parameter(Mandatory)][System.Security.SecureString]$Password
    )
    if (-not (Test-Path -LiteralPath $Program)) {
        Stop-CertrotateOperation -Code 'TOOL_NOT_FOUND' -Message "$(Split-Path -Leaf $Program) was not found at $Program"
    }
    $info = New-Object System.Diagnostics.ProcessStartInfo
    $info.FileName = $Program
    $info.Arguments = Join-WindowsCommandLine -Arguments $Arguments
    $info.UseShellExecute = $false
    $info.RedirectStandardOutput = $true
    $info.RedirectStandardError = $true
    $info.EnvironmentVariables['CERTROTATE_KEYSTORE_PASS'] = ConvertFrom-CertrotateSecureString $Password
    $process = [System.Diagnostics.Process]::Start($info)
    $stdout = $process.StandardOutput.ReadToEndAsync()
    $stderr = $process.StandardError.ReadToEnd()
    $process.WaitForExit()
    [pscustomobject]@{ ExitCode = $process.ExitCode; Output = $stdout.Result; Error = $stderr }
}

function Invoke-ReplicationRecipe {
    <#
        Runs the site's validated recipe for a replication-partner change. A recipe is what an
        administrator captured from the Management Server Configuration Wizard (or Broadcom
        support) for this SEPM version: the program, its arguments and, optionally, the lines of
        a properties file it reads. Placeholders: {{PARTNER_SITE}}, {{COMPUTER}}, {{SEPM_HOME}},
        {{PROPERTIES}} (the path of the filled-in properties file).
    #>
    param(
        [Parameter(Mandatory)][ValidateSet('remove', 'add')][string]$Change,
        [Parameter(Mandatory)][string]$PartnerSiteName,
        [Parameter(Mandatory)][string]$SepmHome,
        [Parameter(Mandatory)][string]$StateDirectory,
        [string]$RecipePath,
        [int]$TimeoutSeconds = 1800
    )
    Assert-CertrotateName -Value $PartnerSiteName -What 'The replication partner site name'
    if (-not $RecipePath) { $RecipePath = Join-Path $StateDirectory 'replication-recipes.json' }
    if (-not (Test-Path -LiteralPath $RecipePath)) {
        Stop-CertrotateOperation -Code 'NOT_CONFIGURED' -Message ("No replication recipe at $RecipePath. " +
            'SEPM has no documented command line to delete or re-add a replication partner; ' +
            "capture and validate one for this SEPM version (see the script's header), " +
            "or use the manual host-operations driver for this site.")
    }
    $recipes = Get-Content -LiteralPath $RecipePath -Raw -Encoding UTF8 | ConvertFrom-Json
    $recipe = $null
    if ($recipes.PSObject.Properties.Name -contains $Change) { $recipe = $recipes.$Change }
    if (-not $recipe -or -not ($recipe.PSObject.Properties.Name -contains 'command') -or -not $recipe.command) {
        Stop-CertrotateOperation -Code 'NOT_CONFIGURED' -Message "$RecipePath has no '$Change' recipe with a command"
    }
    $properties = Join-Path (Join-Path $StateDirectory 'staging') "replication-$Change.properties"
    $fill = {
        param([string]$Text)
        $Text.Replace('{{PARTNER_SITE}}', $PartnerSiteName).Replace('{{COMPUTER}}', $env:COMPUTERNAME).
            Replace('{{SEPM_HOME}}', $SepmHome).Replace('{{PROPERTIES}}', $properties)
    }
    try {
        if ($recipe.PSObject.Properties.Name -contains 'properties' -and $recipe.properties) {
            $lines = @($recipe.properties | ForEach-Object { & $fill $_ })
            [IO.File]::WriteAllLines($properties, $lines, (New-Object Text.UTF8Encoding $false))
        }
        $info = New-Object System.Diagnostics.ProcessStartInfo
        $info.FileName = & $fill $recipe.command
        $recipeArguments = @()
        if ($recipe.PSObject.Properties.Name -contains 'arguments') { $recipeArguments = @($recipe.arguments) }
        $info.Arguments = Join-WindowsCommandLine -Arguments @($recipeArguments | Where-Object { $_ } | ForEach-Object { & $fill $_ })
        $info.UseShellExecute = $false
        $info.RedirectStandardOutput = $true
        $info.RedirectStandardError = $true
        $info.WorkingDirectory = Split-Path -Parent $info.FileName
        if (-not (Test-Path -LiteralPath $info.FileName)) {
            Stop-CertrotateOperation -Code 'NOT_CONFIGURED' -Message "The recipe's program $($info.FileName) does not exist"
        }
        $process = [System.Diagnostics.Process]::Start($info)
        $stdout = $process.StandardOutput.ReadToEndAsync()
        $stderr = $process.StandardError.ReadToEndAsync()
        if (-not $process.WaitForExit($TimeoutSeconds * 1000)) {
            $process.Kill()
            Stop-CertrotateOperation -Code 'REPLICATION_CHANGE_TIMEOUT' -Retryable `
                -Message "$(Split-Path -Leaf $info.FileName) did not finish within $TimeoutSeconds s"
        }
        if ($process.ExitCode -ne 0) {
            $said = (($stderr.Result + ' ' + $stdout.Result).Trim() -split "`r?`n")[0]
            Stop-CertrotateOperation -Code 'REPLICATION_CHANGE_FAILED' `
                -Message "$(Split-Path -Leaf $info.FileName) exited with $($process.ExitCode): $said"
        }
        return $process.ExitCode
    } finally {
        if (Test-Path -LiteralPath $properties) { Remove-Item -LiteralPath $properties -Force }
    }
}
