<#
.SYNOPSIS
    Write a new SEPM server certificate into both stores: Tomcat's keystore.jks (+ server.xml) and Apache's server.crt + server.key.

.DESCRIPTION
    Takes the keystore as bytes (-Keystore) and its password as a SecureString
    (-KeystorePassword). certrotate's WinRM driver delivers both inside the encrypted WinRM
    message body, on standard input, never on a command line; see the bootstrap in
    shared/certrotate_shared/hostops/winrm.py. The password is turned into clear text only
    for keytool's environment (-storepass:env) and for server.xml's keystorePass attribute,
    which is where Tomcat reads it. Nothing here writes it to output, logs or transcripts.

    Steps: stage the keystore under <StateDirectory>\staging; convert PKCS#12 to JKS with SEPM's
    own keytool; check it holds exactly one private key that opens with the password (and with
    the same password as the store, as Tomcat needs); compare its certificate with
    -ExpectedFingerprint; derive Apache's PEM pair from the same keystore (keytool to PKCS#12,
    then the openssl.exe of SEPM's Apache) and check its certificate is the same one; then
    replace <SEPM>\tomcat\etc\keystore.jks, set keystorePass (and keyAlias where the connector
    names one) on every HTTPS connector of <SEPM>\tomcat\conf\server.xml, and replace
    <SEPM>\apache\conf\ssl\server.crt (certificate, then its issuers) and server.key. Every
    new file is staged next to its target first, so a failure before the renames changes
    nothing. The staged files are deleted whatever happens.
    WHAT THIS DOES NOT DO: update SEPM's own record of the certificate, which clients receive
    in the management server list with their policy. Only the console's Manage Server
    Certificate > Update the server certificate does that (Broadcom KB 187099); no unattended
    form is documented. certrotate's WinRM driver therefore gives the swap to a person unless
    the site's vault entry opts in ("certificate_swap": "files") after an administrator
    checked on their SEPM version that the record follows these files.
    The new certificate is served only after restarting semsrv, semwebsrv, semapisrv (14.0+).
    Run Backup-SepmCertificate.ps1 first.
    Output: CERTROTATE-RESULT {"fingerprint_sha256", "alias", "connectors", "restart_required"}.
    Failures use SEPM's words where SEPM has them: "Invalid keystore file",
    "Keystore was tampered with, or password was incorrect".

    Idempotent: the same -IdempotencyKey installs once and then reports the first result.

    VERIFIED HERE: not run (no Windows host); reviewed only. The Python side is unit-tested
    for the parameters it sends and for keeping the password out of command lines and logs.
    CHECK ON A REAL SERVER:
      - whether SEPM's record (management server list) follows the files after a restart;
      - openssl.exe in <SEPM>\apache\bin, its version (OpenSSL 3 needs -legacy for a PKCS#12
        written by an old keytool with RC2), and whether Apache's server.key may be a PKCS#8
        "BEGIN PRIVATE KEY" block or must be "BEGIN RSA PRIVATE KEY";
      - the account semwebsrv runs as can read the new server.key (it takes the ACL of
        apache\conf\ssl, like the file it replaces);
      - keytool's location (<SEPM>\jre\bin\keytool.exe) and its English messages, which the
        error mapping and the alias parsing below read ("PrivateKeyEntry");
      - the HTTPS connectors of your SEPM version's server.xml: attribute style
        (keystoreFile/keystorePass on <Connector>) or Tomcat 8.5+ style
        (<SSLHostConfig><Certificate certificateKeystoreFile/certificateKeystorePassword>);
        both are handled, anything else stops the install before a file is changed;
      - whether SEPM keeps a second copy of the keystore password elsewhere (then the
        Management Server Configuration Wizard's "Update the certificate" path is the
        supported one; use the manual driver for that site);
      - that PowerShell transcription and module logging (event 4103) on the server show
        the password parameter only as System.Security.SecureString.

.EXAMPLE
    $password = Read-Host -AsSecureString 'Keystore password'
    .\Install-SepmCertificate.ps1 -IdempotencyKey 'manual-1' -Format pkcs12 `
        -Keystore ([IO.File]::ReadAllBytes('C:\certs\sepm.p12')) -KeystorePassword $password
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string]$IdempotencyKey,
    [Parameter(Mandatory)][byte[]]$Keystore,
    [Parameter(Mandatory)][System.Security.SecureString]$KeystorePassword,
    [Parameter(Mandatory)][ValidateSet('jks', 'pkcs12')][string]$Format,
    [string]$ExpectedFingerprint,
    [string]$SepmHome,
    [string]$StateDirectory
)
$ErrorActionPreference = 'Stop'
if (-not (Get-Command Write-CertrotateResult -ErrorAction SilentlyContinue)) {
    . (Join-Path $PSScriptRoot 'CertrotateCommon.ps1')
}

$operation = 'certificate.install'
$state = Get-CertrotateStateDirectory -StateDirectory $StateDirectory
$done = Get-CompletedOperation -StateDirectory $state -IdempotencyKey $IdempotencyKey -Operation $operation
if ($done) { Write-CertrotateResult $done; return }

$paths = Get-SepmPaths -SepmHome (Get-SepmHome -SepmHome $SepmHome)
$stem = Join-Path (Join-Path $state 'staging') (Get-Sha256Hex -Bytes ([Text.Encoding]::UTF8.GetBytes($IdempotencyKey))).Substring(0, 16)
$uploaded = "$stem.upload"
$staged = "$stem.jks"
$p12 = "$stem.p12"
$pemParts = @{ Certificate = "$stem.crt"; Issuers = "$stem.ca"; Key = "$stem.key" }
$next = @{}
foreach ($target in @('Keystore', 'ServerXml', 'ApacheCertificate', 'ApacheKey')) {
    $next[$target] = "$($paths.$target).certrotate-new"
}
$wrongPassword = 'Keystore was tampered with, or password was incorrect'

function Assert-Keytool {
    param($Run, [string]$What)
    if ($Run.ExitCode -eq 0) { return }
    $said = "$($Run.Output) $($Run.Error)"
    if ($said -match 'password was incorrect|Given final block not properly padded|failed to decrypt') {
        Stop-CertrotateOperation -Code 'WRONG_PASSWORD' -Message $wrongPassword
    }
    if ($said -match 'Invalid keystore format|toDerInputStream|DerInputStream|not a valid|Unrecognized keystore|EOFException') {
        Stop-CertrotateOperation -Code 'INVALID_KEYSTORE' -Message 'Invalid keystore file'
    }
    $first = ($said.Trim() -split "`r?`n")[0]
    Stop-CertrotateOperation -Code 'KEYTOOL_FAILED' -Message "keytool could not $What`: $first"
}

try {
    [IO.File]::WriteAllBytes($uploaded, $Keystore)
    if ($Format -eq 'pkcs12') {
        $run = Invoke-Keytool -Keytool $paths.Keytool -Password $KeystorePassword -Arguments @(
            '-importkeystore', '-noprompt',
            '-srckeystore', $uploaded, '-srcstoretype', 'PKCS12', '-srcstorepass:env', 'CERTROTATE_KEYSTORE_PASS',
            '-destkeystore', $staged, '-deststoretype', 'JKS', '-deststorepass:env', 'CERTROTATE_KEYSTORE_PASS')
        Assert-Keytool $run 'convert the PKCS#12 file to a JKS keystore'
    } else {
        Copy-Item -LiteralPath $uploaded -Destination $staged -Force
    }

    $run = Invoke-Keytool -Keytool $paths.Keytool -Password $KeystorePassword -Arguments @(
        '-list', '-keystore', $staged, '-storetype', 'JKS', '-storepass:env', 'CERTROTATE_KEYSTORE_PASS')
    Assert-Keytool $run 'open the keystore'
    # Lines look like "sepm, 1 May 2024, PrivateKeyEntry,".
    $aliases = @($run.Output -split "`r?`n" | Where-Object { $_ -match '^(.+?),.*PrivateKeyEntry,\s*$' } |
        ForEach-Object { ($_ -split ',')[0].Trim() })
    if ($aliases.Count -ne 1) {
        Stop-CertrotateOperation -Code 'INVALID_KEYSTORE' `
            -Message "Invalid keystore file: it must hold exactly one private key entry (found $($aliases.Count))"
    }
    $alias = $aliases[0]
    # certrotate's pre-flight refused such an alias already; a keystore changed since, or a
    # script run by hand, must not put it on keytool's command line either.
    Assert-CertrotateName -Value $alias -What 'The keystore alias'

    # Tomcat opens the key with the store password: prove that works (a CSR needs the key).
    $run = Invoke-Keytool -Keytool $paths.Keytool -Password $KeystorePassword -Arguments @(
        '-certreq', '-alias', $alias, '-keystore', $staged, '-storetype', 'JKS',
        '-storepass:env', 'CERTROTATE_KEYSTORE_PASS', '-keypass:env', 'CERTROTATE_KEYSTORE_PASS')
    if ($run.ExitCode -ne 0) {
        Stop-CertrotateOperation -Code 'INVALID_PRIVATE_KEY' `
            -Message 'Invalid private key file: the private key does not open with the keystore password'
    }

    $run = Invoke-Keytool -Keytool $paths.Keytool -Password $KeystorePassword -Arguments @(
        '-exportcert', '-rfc', '-alias', $alias, '-keystore', $staged, '-storetype', 'JKS',
        '-storepass:env', 'CERTROTATE_KEYSTORE_PASS')
    Assert-Keytool $run 'read the certificate'
    $pem = [regex]::Match($run.Output, '-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----', 'Singleline')
    if (-not $pem.Success) { Stop-CertrotateOperation -Code 'INVALID_KEYSTORE' -Message 'Invalid keystore file' }
    $fingerprint = Get-Sha256Hex -Bytes ([Convert]::FromBase64String(($pem.Groups[1].Value -replace '\s', '')))
    if ($ExpectedFingerprint -and $fingerprint -ne $ExpectedFingerprint.ToLowerInvariant()) {
        Stop-CertrotateOperation -Code 'BUNDLE_MISMATCH' `
            -Message "The keystore holds certificate $fingerprint, not the expected $ExpectedFingerprint"
    }

    # Apache's pair from the same keystore: JKS -> PKCS#12 (keytool) -> PEM (SEPM's openssl).
    $run = Invoke-Keytool -Keytool $paths.Keytool -Password $KeystorePassword -Arguments @(
        '-importkeystore', '-noprompt', '-srcalias', $alias,
        '-srckeystore', $staged, '-srcstoretype', 'JKS', '-srcstorepass:env', 'CERTROTATE_KEYSTORE_PASS',
        '-destkeystore', $p12, '-deststoretype', 'PKCS12', '-deststorepass:env', 'CERTROTATE_KEYSTORE_PASS')
    Assert-Keytool $run 'convert the keystore for Apache'
    foreach ($part in @(@('Certificate', '-clcerts', '-nokeys'), @('Issuers', '-cacerts', '-nokeys'), @('Key', '-nocerts', '-nodes'))) {
        $run = Invoke-SepmTool -Program $paths.Openssl -Password $KeystorePassword -Arguments @(
            'pkcs12', '-in', $p12, '-passin', 'env:CERTROTATE_KEYSTORE_PASS', $part[1], $part[2],
            '-out', $pemParts[$part[0]])
        if ($run.ExitCode -ne 0) {
            $said = (("$($run.Error) $($run.Output)").Trim() -split "`r?`n")[0]
            Stop-CertrotateOperation -Code 'OPENSSL_FAILED' -Message "openssl could not write Apache's $($part[0].ToLowerInvariant()): $said"
        }
    }
    $pemBlock = '-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----'
    $leafPem = [regex]::Match([IO.File]::ReadAllText($pemParts.Certificate), $pemBlock)
    $leafBody = $leafPem.Value -replace '-----(BEGIN|END) CERTIFICATE-----', '' -replace '\s', ''
    if (-not $leafPem.Success -or
        (Get-Sha256Hex -Bytes ([Convert]::FromBase64String($leafBody))) -ne $fingerprint) {
        Stop-CertrotateOperation -Code 'APACHE_MISMATCH' `
            -Message "The certificate written for Apache is not the keystore's ($fingerprint); nothing was changed"
    }
    $issuers = @([regex]::Matches([IO.File]::ReadAllText($pemParts.Issuers), $pemBlock) | ForEach-Object { $_.Value })
    $keyPem = [regex]::Match([IO.File]::ReadAllText($pemParts.Key), '-----BEGIN (RSA )?PRIVATE KEY-----.+?-----END (RSA )?PRIVATE KEY-----', 'Singleline')
    if (-not $keyPem.Success) {
        Stop-CertrotateOperation -Code 'INVALID_PRIVATE_KEY' -Message 'Invalid private key file: openssl wrote no private key for Apache'
    }
    $ascii = New-Object Text.UTF8Encoding $false
    [IO.File]::WriteAllText($next.ApacheCertificate, ((@($leafPem.Value) + $issuers) -join "`n") + "`n", $ascii)
    [IO.File]::WriteAllText($next.ApacheKey, $keyPem.Value + "`n", $ascii)
    $keyPem = $null

    # server.xml: change every HTTPS connector, or nothing at all.
    $xml = New-Object System.Xml.XmlDocument
    $xml.PreserveWhitespace = $true
    $xml.Load($paths.ServerXml)
    $plain = ConvertFrom-CertrotateSecureString $KeystorePassword
    $changed = 0
    foreach ($connector in @($xml.SelectNodes('//Connector[@keystoreFile or @keystorePass]'))) {
        if ($connector.GetAttribute('keystoreFile') -and $connector.GetAttribute('keystoreFile') -notmatch 'keystore\.jks$') {
            Stop-CertrotateOperation -Code 'SERVER_XML_UNRECOGNISED' `
                -Message "A connector on port $($connector.GetAttribute('port')) uses $($connector.GetAttribute('keystoreFile')), not keystore.jks"
        }
        $connector.SetAttribute('keystorePass', $plain)
        if ($connector.HasAttribute('keyAlias')) { $connector.SetAttribute('keyAlias', $alias) }
        if ($connector.HasAttribute('keyPass')) { $connector.SetAttribute('keyPass', $plain) }
        $changed++
    }
    foreach ($certificate in @($xml.SelectNodes('//SSLHostConfig/Certificate[@certificateKeystoreFile]'))) {
        if ($certificate.GetAttribute('certificateKeystoreFile') -notmatch 'keystore\.jks$') {
            Stop-CertrotateOperation -Code 'SERVER_XML_UNRECOGNISED' `
                -Message "An SSLHostConfig uses $($certificate.GetAttribute('certificateKeystoreFile')), not keystore.jks"
        }
        $certificate.SetAttribute('certificateKeystorePassword', $plain)
        if ($certificate.HasAttribute('certificateKeyAlias')) { $certificate.SetAttribute('certificateKeyAlias', $alias) }
        if ($certificate.HasAttribute('certificateKeyPassword')) { $certificate.SetAttribute('certificateKeyPassword', $plain) }
        $changed++
    }
    $plain = $null
    if ($changed -eq 0) {
        Stop-CertrotateOperation -Code 'SERVER_XML_UNRECOGNISED' `
            -Message "No HTTPS connector with a keystore was found in $($paths.ServerXml); nothing was changed"
    }

    # Replace the four files: all staged next to their targets above, then each renamed over
    # its target (same volume). A failure between two renames is undone by the backup.
    Copy-Item -LiteralPath $staged -Destination $next.Keystore -Force
    $xml.Save($next.ServerXml)
    foreach ($target in @('Keystore', 'ServerXml', 'ApacheCertificate', 'ApacheKey')) {
        Move-Item -LiteralPath $next[$target] -Destination $paths.$target -Force
    }
} finally {
    foreach ($file in @($uploaded, $staged, $p12) + @($pemParts.Values) + @($next.Values)) {
        if (Test-Path -LiteralPath $file) { Remove-Item -LiteralPath $file -Force }
    }
}

$result = @{
    fingerprint_sha256 = $fingerprint
    alias = $alias
    connectors = $changed
    stores = @('tomcat', 'apache')
    restart_required = @('semsrv', 'semwebsrv', 'semapisrv')
}
Write-CertrotateResult (Complete-Operation -StateDirectory $state -IdempotencyKey $IdempotencyKey -Operation $operation -Result $result)
