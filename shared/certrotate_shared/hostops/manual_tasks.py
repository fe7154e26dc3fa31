"""The operator tasks of the manual driver: what a SEPM administrator is asked to do, and how
certrotate will check it. Pure text builders; never given a password or a key to print."""

from __future__ import annotations

import hashlib

from certrotate_shared.hostops.backup_refs import BackupRef
from certrotate_shared.hostops.base import OperatorTask, services_to_restart
from certrotate_shared.messages.common import ServerTarget

SEPM_HOME = r"C:\Program Files (x86)\Symantec\Symantec Endpoint Protection Manager"
WINRM_BACKUPS = r"C:\ProgramData\certrotate\backups"
BACKUP_FILES = ("keystore.jks", "server.xml", "server.crt", "server.key")
SERVICE_NAMES = {
    "semsrv": "Symantec Endpoint Protection Manager",
    "semwebsrv": "Symantec Endpoint Protection Manager Webserver",
    "semapisrv": "Symantec Endpoint Protection Manager API Service",
}


def task_id_for(key: str) -> str:
    """The operator task id of an operation: the same idempotency key, the same task."""
    return "task-" + hashlib.sha256(key.encode()).hexdigest()[:20]


def _host(server: ServerTarget) -> str:
    return server.hostnames[0] if server.hostnames else server.address


def _tls_ports(server: ServerTarget) -> list[tuple[str, int]]:
    ports = server.tls_ports() or {"8443": 8443, "8446": 8446, "443": 443}
    return sorted(ports.items(), key=lambda item: item[0])


def _restart_steps(server: ServerTarget, first: int) -> list[str]:
    services = services_to_restart(server.version)
    lines = [
        f"{first}. Restart the SEPM services on {server.name}, in this order, from an "
        "elevated PowerShell:"
    ]
    for service in services:
        lines.append(f"       Stop-Service -Name {service} -Force; Start-Service -Name {service}")
    lines.append(f"       Get-Service -Name {', '.join(services)}   # each must show Running")
    names = ", ".join(f"{s} ({SERVICE_NAMES[s]})" for s in services)
    lines.append(f"   (services: {names})")
    return lines


def _fingerprint_check(server: ServerTarget, fingerprint: str | None, which: str) -> str:
    ports = ", ".join(f"{name} (port {number})" for name, number in _tls_ports(server))
    host = _host(server)
    port = _tls_ports(server)[0][1]
    wanted = f"sha256 {fingerprint}" if fingerprint else which
    return (
        f"certrotate will open a TLS connection to {server.address} on {ports} and check that "
        f"each presents {wanted}. To check it yourself:\n"
        f"    openssl s_client -connect {host}:{port} -servername {host} </dev/null 2>/dev/null"
        " | openssl x509 -noout -fingerprint -sha256"
    )


def _store_files(indent: str) -> list[str]:
    return [
        f"{indent}{SEPM_HOME}\\tomcat\\etc\\keystore.jks      (Tomcat: ports 8443 and 8446)",
        f"{indent}{SEPM_HOME}\\tomcat\\conf\\server.xml       (keystorePass: the keystore's password)",
        f"{indent}{SEPM_HOME}\\apache\\conf\\ssl\\server.crt   (Apache: ports 443 and 8445)",
        f"{indent}{SEPM_HOME}\\apache\\conf\\ssl\\server.key",
    ]


def _console_update(server: ServerTarget, step: int) -> list[str]:
    """The vendor's procedure (Manage Server Certificate > Update the server certificate)."""
    return [
        f"{step}. In the SEPM console, logged on as a system administrator: Admin > Servers > "
        f"expand Local Site > select {server.name}. Under Tasks, click Manage Server "
        "Certificate, then Next.",
        f"{step + 1}. Click Update the server certificate, then Next.",
    ]


def backup_task(server: ServerTarget, key: str, served: str | None) -> OperatorTask:
    now = f" It now serves sha256 {served}." if served else ""
    instructions = "\n".join(
        [
            f"Before the certificate of management server {server.name} is replaced, keep what is "
            "needed to put back exactly SEPM's record of it and both of its stores." + now,
            f"1. On {server.name}, copy these files to a folder named {task_id_for(key)} on a "
            "share only administrators can read (they hold the private key and its password):",
            *_store_files("       "),
            f'2. Copy the folder "{SEPM_HOME}\\Server Private Key Backup" there too (SEPM\'s own '
            "recovery backup of the server's private key).",
            "3. SEPM's record of the certificate (what clients receive in the management server "
            "list) is put back by giving the saved keystore.jks to the console again; the "
            "rollback task says how. Nothing else needs saving for it.",
            "4. Confirm this task. Change nothing else yet.",
        ]
    )
    return OperatorTask(
        task_id=task_id_for(key),
        title=f"Back up the server certificate of {server.name}",
        instructions=instructions,
        verification=(
            "certrotate records the certificate "
            f"{server.name} serves on its TLS ports at confirmation; a rollback must serve it again."
        ),
        server=server.name,
    )


def install_task(
    server: ServerTarget, key: str, *, bundle_ref: str | None, fmt: str, fingerprint: str | None
) -> OperatorTask:
    bundle = (
        f"the certificate bundle {bundle_ref} held by certrotate"
        if bundle_ref
        else "the certificate bundle uploaded to certrotate for this rotation"
    )
    kind = {
        "pkcs12": "PKCS#12 keystore (.pfx/.p12)",
        "jks": "JKS keystore",
        "pem": "certificate file and private key file",
    }[fmt]
    lines = [
        f"Install the new server certificate on management server {server.name} with SEPM's "
        "console. It is the only supported way that updates SEPM's record of the certificate "
        "(which clients receive in the management server list with their policy) and both "
        "stores: tomcat\\etc\\keystore.jks (8443, 8446) and apache\\conf\\ssl\\server.crt + "
        "server.key (443, 8445). Do not copy files into place instead: clients would be handed "
        "the old certificate.",
        f"1. Get {bundle} ({kind}). Its password is not shown here and certrotate never displays "
        "it: ask whoever supplied the certificate.",
        f"2. Copy the file(s) to {server.name}, for example to C:\\certrotate\\{task_id_for(key)}\\.",
        *_console_update(server, 3),
        f'5. Choose "{kind}", browse to the file(s) copied in step 2, enter the password and '
        'click Next. If SEPM answers "Invalid keystore file", "Invalid private key file" or a '
        "password error, stop and report it: nothing was changed.",
        "6. Click Finish.",
        *_restart_steps(server, 7),
        "8. Delete the copied file(s) from the server, then confirm this task.",
    ]
    if fingerprint is None:
        lines.insert(
            1, "The certificate's sha256 fingerprint is shown with the bundle in certrotate."
        )
    return OperatorTask(
        task_id=task_id_for(key),
        title=f"Install the new certificate on {server.name} and restart its services",
        instructions="\n".join(lines),
        verification=_fingerprint_check(server, fingerprint, "the new certificate"),
        server=server.name,
    )


def restore_task(
    server: ServerTarget,
    key: str,
    *,
    source: str | None,
    backup_id: str | None,
    fingerprint: str | None,
) -> OperatorTask:
    if source == "winrm" and backup_id:
        saved = (
            f"%ProgramData%\\certrotate\\backups\\{backup_id} on {server.name} (certrotate's "
            "WinRM backup)"
        )
    elif backup_id:
        saved = f"the folder {backup_id} (from the backup task)"
    else:
        saved = "the backup taken before the rotation"
    served = f" (sha256 {fingerprint})" if fingerprint else ""
    lines = [
        f"Roll back management server {server.name} to the certificate it served before the "
        f"rotation{served}: in SEPM's record and in both stores, through the console.",
        f"1. From {saved}, take keystore.jks, and read its password in the saved server.xml "
        "(keystorePass, or certificateKeystorePassword, of the HTTPS connector).",
        *_console_update(server, 2),
        '4. Choose "JKS keystore", browse to that keystore.jks, enter its password, click Next, '
        "then Finish.",
        "5. Only if the console cannot be used: stop the services, put the four saved files "
        "back where they came from, and start the services. SEPM's record then still holds "
        "the new certificate: do steps 2 to 4 as soon as the console works.",
        *_store_files("       "),
        *_restart_steps(server, 6),
        "7. Confirm this task.",
    ]
    return OperatorTask(
        task_id=task_id_for(key),
        title=f"Roll back the certificate of {server.name} and restart its services",
        instructions="\n".join(lines),
        verification=_fingerprint_check(server, fingerprint, "the certificate it served before"),
        server=server.name,
    )


def restart_task(server: ServerTarget, service: str, key: str) -> OperatorTask:
    name = SERVICE_NAMES.get(service, service)
    return OperatorTask(
        task_id=task_id_for(key),
        title=f"Restart {service} on {server.name}",
        instructions="\n".join(
            [
                f"On {server.name}, from an elevated PowerShell, restart {name}:",
                f"    Stop-Service -Name {service} -Force; Start-Service -Name {service}",
                f"    Get-Service -Name {service}   # must show Running",
                "Then confirm this task.",
            ]
        ),
        verification=f"certrotate checks the TLS ports of {server.name} answer again.",
        server=server.name,
    )


def delete_backup_task(server: ServerTarget, key: str, backup: BackupRef) -> OperatorTask:
    """Delete one backup after its rotation's retention: exactly these files, nothing else."""
    keep = (
        f'Do not touch "{SEPM_HOME}\\Server Private Key Backup" on {server.name} (SEPM\'s own '
        "recovery backup) or the live files under tomcat\\ and apache\\: only the backup below."
    )
    holds = f"It holds the certificate with sha256 {backup.fingerprint} and its private key."
    if backup.source == "winrm":
        folder = f"{WINRM_BACKUPS}\\{backup.backup_id}"
        lines = [
            f"The retention period of the rotation that backed up management server "
            f"{server.name} is over. Delete that backup from {server.name} ({_host(server)}). "
            + holds,
            keep,
            f"1. On {server.name}, from an elevated PowerShell, delete these five files (if "
            "certrotate's scripts were given another state directory, the same names under it):",
            *(f"       {folder}\\{name}" for name in (*BACKUP_FILES, "manifest.json")),
            f"2. Then delete the folder {folder} itself, which must now be empty. If it holds "
            "anything else, stop and report it: that is not certrotate's.",
            "3. Confirm this task. A file already gone counts as deleted.",
        ]
    else:
        lines = [
            f"The retention period of the rotation whose backup task {backup.backup_id} backed "
            f"up management server {server.name} is over. Delete that backup. " + holds,
            keep,
            f"1. On the administrators-only share used for that task, open the folder named "
            f"{backup.backup_id} and delete these files:",
            *(f"       {name}" for name in BACKUP_FILES),
            '       the copy of "Server Private Key Backup" made in the backup task (the copy '
            f"in that folder, not SEPM's folder on {server.name})",
            f"2. Delete the folder {backup.backup_id}, then confirm this task. A file already "
            "gone counts as deleted.",
        ]
    return OperatorTask(
        task_id=task_id_for(key),
        title=f"Delete the expired certificate backup of {server.name}",
        instructions="\n".join(lines),
        verification=(
            "certrotate cannot see those files; it records your confirmation and then forgets "
            "the backup."
        ),
        server=server.name,
    )
