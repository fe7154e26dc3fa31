"""Secrets given as settings never come back in an error text, whoever builds the settings.

`load_settings` rewrites errors itself, but the embedded stack (and `certrotate up`) builds
each service's Settings directly: pydantic's own ValidationError text then shows input values.
"""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from certificates.settings import Settings as CertificatesSettings
from certrotate_shared.secretbox import generate_master_key
from certrotate_shared.settings import ServiceSettings
from orchestrator.settings import Settings as OrchestratorSettings

pytestmark = pytest.mark.unit

SHORT_KEY = base64.urlsafe_b64encode(b"too-short-secret-key").decode()  # 20 bytes, not 32
SHORT_TOKEN = "sh0rt-s3cret"  # below the 16-character minimum


def test_a_wrong_master_key_is_not_echoed_by_direct_construction():
    with pytest.raises(ValidationError) as err:
        ServiceSettings(master_key=SHORT_KEY)
    assert "must decode to 32 bytes" in str(err.value)
    assert SHORT_KEY not in str(err.value)


def test_a_short_admin_token_is_not_echoed():
    with pytest.raises(ValidationError) as err:
        OrchestratorSettings(
            master_key=generate_master_key(),
            admin_token=SHORT_TOKEN,
            internal_token="x" * 32,
        )
    assert "admin token" in str(err.value)
    assert SHORT_TOKEN not in str(err.value)


def test_a_short_internal_token_is_not_echoed():
    with pytest.raises(ValidationError) as err:
        CertificatesSettings(master_key=generate_master_key(), internal_token=SHORT_TOKEN)
    assert "internal token" in str(err.value)
    assert SHORT_TOKEN not in str(err.value)
