"""A rehearsal as a new operator runs it: the twin from a scenario, `certrotate up --follow-twin`
and `certrotate sites import-twin`, then a rotation from the CLI.

Without following the twin's clock, certrotate waits on the real clock while the twin runs
3,600 times faster: each propagation scan comes five real minutes apart and the rotation is
still running after ten. Following it, the same rotation completes within the wait below.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.secret_scan import SecretScan
from tests.e2e.support import LOG_ROOT, SEPM_PASSWORD, TwinProcess, scenario

pytestmark = pytest.mark.e2e

CERTROTATE = str(Path(sys.executable).parent / "certrotate")
# A generous bound for the whole rotation on a busy machine, not a measured duration: without
# --follow-twin the rotation needs well over ten minutes.
ROTATION_WAIT_S = 150


async def certrotate(
    *args: str, env: dict[str, str], timeout: float = 60, scan: SecretScan | None = None
) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        CERTROTATE, *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(
            f"certrotate {' '.join(args[:3])} did not end within {timeout:g} s:\n"
            f"{out.decode()[-3000:]}\n{err.decode()[-3000:]}"
        ) from None
    assert proc.returncode is not None
    if scan is not None:
        scan.text(f"output of certrotate {' '.join(args[:2])}", out + err)
    return proc.returncode, out.decode(), err.decode()


async def test_twin_up_follow_twin_and_import_rotate_a_site_without_orphans(
    tmp_path: Path, topic_prefix: str, secret_scan: SecretScan
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CERTROTATE_")}
    workdir = LOG_ROOT / f"rehearsal-{topic_prefix}"
    twin = TwinProcess(scenario(speed=3600), workdir)
    secret_scan.secret("SEPM account password", SEPM_PASSWORD)
    secret_scan.log_dir(workdir)
    await twin.start()
    assert twin.http is not None
    secret_scan.watch_client(twin.http, "twin control", search_answers=False)
    scenario_file = workdir / "scenario.json"  # the file the twin was started from
    data_dir = tmp_path / "data"
    up = await asyncio.create_subprocess_exec(
        CERTROTATE, "up", "--mode", "embedded", "--follow-twin", twin.url,
        "--port", "0", "--data-dir", str(data_dir),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=(workdir / "up.log").open("wb"),
    )  # fmt: skip
    try:
        assert up.stdout is not None
        banner = (await asyncio.wait_for(up.stdout.readline(), 90)).decode()
        assert "serving http://" in banner, banner + (workdir / "up.log").read_text()[-3000:]
        api_url = banner.split("serving ", 1)[1].split()[0]
        secret_scan.secrets_file(data_dir / "secrets.json")
        secret_scan.transport_db(data_dir / "transport.db")
        client = ["--api", api_url, "--token-file", str(data_dir / "secrets.json")]

        code, out, err = await certrotate(
            "sites", "import-twin", twin.url, "--scenario", str(scenario_file), *client,
            env=env, scan=secret_scan,
        )  # fmt: skip
        assert code == 0, out + err
        code, out, _ = await certrotate(
            "sites", "list", "--json", *client, env=env, scan=secret_scan
        )
        sites = {site["name"]: site for site in json.loads(out)}
        assert set(sites) == {"site-a", "site-b"}
        assert sites["site-a"]["replication_partners"] == ["site-b"]
        assert sites["site-a"]["credentials_set"] is True
        code, out, _ = await certrotate(
            "servers", "list", "--json", *client, env=env, scan=secret_scan
        )
        servers = {server["name"]: server for server in json.loads(out)}
        assert set(servers) == {"sepm-a1", "sepm-a2", "sepm-b1"}
        topology = await twin.topology()
        twin_servers = {s["name"]: s for site in topology["sites"] for s in site["servers"]}
        for name, server in servers.items():
            assert server["hostnames"] == twin_servers[name]["hostnames"]
            assert {k: int(v) for k, v in server["ports"].items()} == {
                k: int(v) for k, v in twin_servers[name]["ports"].items()
            }

        hosts = sorted({h for s in topology["sites"][0]["servers"] for h in s["hostnames"]})
        issued = await twin.post(
            "/ca/issue", {"hostnames": hosts, "format": "pkcs12", "password": "Bundle-Pass-1"}
        )
        bundle = tmp_path / "new.p12"
        bundle.write_bytes(base64.b64decode(issued["install"]["data_b64"]))
        password = tmp_path / "bundle.pw"
        password.write_text(issued["install"]["password"] + "\n")
        secret_scan.keystore("uploaded bundle", bundle.read_bytes(), issued["install"]["password"])
        code, out, err = await certrotate(
            "rotate", "--site", "site-a", "--bundle", str(bundle), "--password-file",
            str(password), "--wait", "--interval", "0.5", *client,
            env=env, timeout=ROTATION_WAIT_S, scan=secret_scan,
        )  # fmt: skip
        assert code == 0, out + err[-3000:]
        rotation_id = out.splitlines()[0]
        code, out, _ = await certrotate(
            "status", rotation_id, "--json", *client, env=env, scan=secret_scan
        )
        view = json.loads(out)
        assert view["state"] == "completed"
        assert (await twin.orphans())["count"] == 0
        assert all((await twin.verification_settings("site-a")).values())
        assert await twin.settled_replication("site-a") == {"site-b": "SUCCEEDED"}
        new_fp = issued["fingerprint_sha256"].lower()
        for name in ("sepm-a1", "sepm-a2"):
            served = (await twin.server(name))["served_fingerprints"]
            assert {fp.lower() for fp in served.values()} == {new_fp}
        token = json.loads((data_dir / "secrets.json").read_text())["admin_token"]
        async with httpx.AsyncClient(
            base_url=api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as api:
            secret_scan.watch_client(api)
            await secret_scan.rotation_events(api)
    finally:
        if up.returncode is None:
            up.terminate()
            try:
                await asyncio.wait_for(up.wait(), 30)
            except TimeoutError:
                up.kill()
                await up.wait()
        await twin.stop()
