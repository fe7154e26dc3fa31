"""Kafka security settings (issue 11 item 4, Kafka half): TLS and SASL reach every aiokafka
client the services create (producer, consumer, admin), and settings that cannot work are
refused at start-up naming the variables. No broker needed: the clients are built, not started."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from certrotate_shared.runtime import make_transport
from certrotate_shared.settings import SettingsError, load_settings
from certrotate_shared.transport.kafka import (
    KafkaTransport,
    admin_client,
    kafka_security,
)
from tests.support.echo_worker import EchoSettings
from tests.support.pki import TestCA

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    where = tmp_path_factory.mktemp("kafka-pki")
    ca = TestCA.root("Kafka CA", slot=1)
    client = ca.issue(["certrotate"], key_slot=10)
    paths = {
        "ca": (ca.pem, "ca.pem"),
        "cert": (client.cert_pem(), "client.pem"),
        "key": (client.key_pem(), "client.key"),
        "password": (b"s3cret-kafka-password\n", "sasl-password"),
    }
    out = {}
    for name, (data, filename) in paths.items():
        (where / filename).write_bytes(data)
        out[name] = str(where / filename)
    return out


def _settings(master_key: str, **kafka: str) -> EchoSettings:
    return load_settings(EchoSettings, master_key=master_key, **kafka)


def test_plaintext_by_default(master_key: str) -> None:
    assert kafka_security(_settings(master_key)) == {"security_protocol": "PLAINTEXT"}


async def test_sasl_over_tls_reaches_the_producer_the_consumer_and_the_admin_client(
    master_key: str, files: dict[str, str]
) -> None:
    settings = _settings(
        master_key,
        kafka_security_protocol="SASL_SSL",
        kafka_ssl_ca_file=files["ca"],
        kafka_ssl_cert_file=files["cert"],
        kafka_ssl_key_file=files["key"],
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="certrotate-replication",
        kafka_sasl_password_file=files["password"],
    )
    transport = make_transport(settings)
    assert isinstance(transport, KafkaTransport)
    producer = transport.producer()
    consumer = transport.subscribe("g", ["t"])._consumer
    admin = admin_client(settings.kafka_bootstrap, kafka_security(settings))
    for client in (producer.client, consumer._client, admin._client):
        assert client._security_protocol == "SASL_SSL"
        assert client._sasl_mechanism == "SCRAM-SHA-512"
        assert client._sasl_plain_username == "certrotate-replication"
        # Read from the file, without its trailing newline; never from the environment.
        assert client._sasl_plain_password == "s3cret-kafka-password"
        context = client._ssl_context
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
        assert any(c["subject"] for c in context.get_ca_certs())


def test_a_sasl_password_never_shows_in_the_settings_repr(
    master_key: str, files: dict[str, str]
) -> None:
    settings = _settings(
        master_key,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="u",
        kafka_sasl_password_file=files["password"],
    )
    assert "s3cret" not in repr(settings) and "s3cret" not in repr(kafka_security(settings))


@pytest.mark.parametrize(
    ("kafka", "variable"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "KAFKA_SASL_MECHANISM"),
        (
            {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "PLAIN"},
            "KAFKA_SASL_USERNAME",
        ),
        (
            {
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_mechanism": "PLAIN",
                "kafka_sasl_username": "u",
            },
            "KAFKA_SASL_PASSWORD_FILE",
        ),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_cert_file": "CERT"}, "KAFKA_SSL_KEY_FILE"),
        ({"kafka_security_protocol": "PLAINTEXT", "kafka_ssl_ca_file": "CA"}, "SSL"),
        ({"kafka_ssl_ca_file": "/nonexistent/ca.pem"}, "KAFKA_SSL_CA_FILE"),
        ({"kafka_security_protocol": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
    ],
)
def test_kafka_security_that_cannot_work_is_refused_naming_the_variable(
    master_key: str, files: dict[str, str], kafka: dict[str, str], variable: str, tmp_path: Path
) -> None:
    values = {k: {"CERT": files["cert"], "CA": files["ca"]}.get(v, v) for k, v in kafka.items()}
    with pytest.raises(SettingsError) as caught:
        _settings(master_key, **values)
    assert variable in str(caught.value)
