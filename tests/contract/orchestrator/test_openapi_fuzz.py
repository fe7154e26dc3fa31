"""Schemathesis against the orchestrator's OpenAPI document (issue 11, "Suites in CI"): every
check, every phase, against a live orchestrator on a real HTTP listener. Any failure means the
document and the API disagree: fix the document (responses, constraints) or the API, never the
checks. fuzz_hooks.py supplies the data a schema cannot describe (which sites exist, ...).
A fixed seed keeps CI reproducible; CERTROTATE_FUZZ_SEED and CERTROTATE_FUZZ_EXAMPLES explore
further by hand."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.contract.orchestrator.fuzz_hooks import SERVER, SITE
from tests.contract.orchestrator.live import live_orchestrator
from tests.integration.orchestrator.support import ADMIN, server_body, site_body

pytestmark = pytest.mark.contract

SEED = os.environ.get("CERTROTATE_FUZZ_SEED", "20261130")
EXAMPLES = os.environ.get("CERTROTATE_FUZZ_EXAMPLES", "8")


def test_schemathesis_finds_no_failure_and_no_server_error(tmp_path: Path, master_key: str):
    st = Path(sys.executable).parent / "st"
    root = Path(__file__).parents[3]
    with live_orchestrator(tmp_path, master_key) as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}) as api:
            assert api.post("/v1/sites", json=site_body(SITE)).status_code == 201
            assert api.post("/v1/servers", json=server_body(SERVER, SITE)).status_code == 201
        run = subprocess.run(
            [
                str(st), "run", f"{url}/openapi.json", "--checks", "all",
                "--header", f"Authorization: Bearer {ADMIN}",
                "--max-examples", EXAMPLES, "--seed", SEED, "--no-color",
                "--request-timeout", "30",
            ],
            capture_output=True, text=True, timeout=600, cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(root),
                 "SCHEMATHESIS_HOOKS": "tests.contract.orchestrator.fuzz_hooks"},
        )  # fmt: skip
    report = run.stdout[-20000:] + run.stderr[-5000:]
    assert run.returncode == 0, report
    assert "Server error" not in run.stdout, report
