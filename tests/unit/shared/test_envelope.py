from __future__ import annotations

import uuid

import pytest

from certrotate_shared.envelope import Envelope, UnknownMessageError, message_class
from certrotate_shared.messages.operator_tasks import ConfirmOperatorTask
from certrotate_shared.messages.replication import InspectSite, SiteInspected
from certrotate_shared.topics import topic_for
from tests.support.factories import inspect_site

pytestmark = pytest.mark.unit


def test_envelope_round_trips_through_bytes_to_the_same_typed_message():
    command = inspect_site()
    envelope = Envelope.wrap(command, saga_id="saga-1")
    decoded = Envelope.from_bytes(envelope.to_bytes())
    assert decoded == envelope
    assert decoded.message() == command
    assert isinstance(decoded.message(), InspectSite)
    assert (decoded.type, decoded.version) == ("InspectSite", 1)


def test_a_caused_message_inherits_the_correlation_and_names_its_cause():
    cause = Envelope.wrap(inspect_site(), saga_id="saga-1", correlation_id="CHG0012345")
    reply = Envelope.wrap(
        SiteInspected(site="site-a", version="14.3", replicated=False, partners=[]),
        saga_id="saga-1",
        causation=cause,
    )
    assert reply.correlation_id == "CHG0012345"
    assert reply.causation_id == str(cause.message_id)
    assert reply.message_id != cause.message_id


def test_fields_added_by_a_newer_producer_are_ignored_within_a_version():
    envelope = Envelope.wrap(inspect_site(), saga_id="s")
    payload = {**envelope.payload, "added_later": {"x": 1}}
    newer = envelope.model_copy(update={"payload": payload})
    assert newer.message() == inspect_site().model_copy(
        update={"idempotency_key": envelope.payload["idempotency_key"]}
    )


def test_unknown_type_or_version_is_a_clear_error():
    with pytest.raises(UnknownMessageError, match=r"InspectSite.*version=99"):
        message_class("InspectSite", 99)
    envelope = Envelope(type="NoSuchThing", version=1, saga_id="s", correlation_id="s", payload={})
    with pytest.raises(UnknownMessageError):
        envelope.message()


def test_messages_are_frozen():
    command = inspect_site()
    with pytest.raises(ValueError):
        # setattr: mypy already knows the field is frozen; the test checks that pydantic does.
        setattr(command, "idempotency_key", "other")  # noqa: B010


def test_commands_route_to_their_service_and_events_to_the_events_topic():
    assert topic_for(inspect_site(), "p") == "p.replication.commands"
    reply = SiteInspected(site="a", version="14", replicated=True, partners=[])
    assert topic_for(reply, "p") == "p.events"
    confirm = ConfirmOperatorTask(
        idempotency_key=str(uuid.uuid4()),
        target_service="certificates",
        task_id="t1",
        confirmed_by="alice",
    )
    assert topic_for(confirm, "p") == "p.certificates.commands"
