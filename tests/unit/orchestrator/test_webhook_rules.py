"""Rules of webhook triggers and callbacks, without I/O."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.domain import subscriptions as subs
from orchestrator.domain import webhooks as rules
from orchestrator.domain.subscriptions import Marks, events_between

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def rotation(rid: str, fp: str, status: str, *, swap: bool = False, age: int = 0):
    return rules.SiteRotation(rid, fp, status, swap, NOW - timedelta(hours=age))


def test_the_same_certificate_as_a_rotation_going_forward_answers_with_it():
    verdict = rules.judge_trigger("AB" * 32, [rotation("r1", "ab" * 32, "paused")])
    assert verdict == rules.TriggerVerdict("duplicate", "r1")


def test_the_same_certificate_as_the_latest_completed_rotation_answers_with_it_only():
    history = [rotation("r1", "aa", "completed", age=10), rotation("r2", "bb", "completed", age=5)]
    assert rules.judge_trigger("bb", history) == rules.TriggerVerdict("duplicate", "r2")
    # A certificate the site served two rotations ago is a new rotation, not a duplicate.
    assert rules.judge_trigger("aa", history).action == "start"


def test_a_newer_certificate_supersedes_before_the_swap_and_is_refused_after():
    before = [rotation("r1", "aa", "running")]
    assert rules.judge_trigger("bb", before) == rules.TriggerVerdict("supersede", "r1", ("r1",))
    after = [rotation("r1", "aa", "running", swap=True)]
    assert rules.judge_trigger("bb", after) == rules.TriggerVerdict("refuse", "r1")
    # Even the same certificate is refused past the swap if it is a compensation under way.
    comp_swap = [rotation("r1", "bb", "compensating", swap=True)]
    assert rules.judge_trigger("bb", comp_swap).action == "refuse"


def test_a_third_certificate_supersedes_the_waiting_one_and_also_waits_for_the_compensation():
    site = [rotation("old", "aa", "compensating", age=2), rotation("mid", "bb", "paused", age=1)]
    verdict = rules.judge_trigger("cc", site)
    assert verdict.action == "supersede" and verdict.rotation_id == "mid"
    assert set(verdict.wait_for) == {"old", "mid"}
    # Only a compensation under way: nothing to cancel, but wait for it.
    alone = rules.judge_trigger("cc", [rotation("old", "aa", "compensating")])
    assert alone == rules.TriggerVerdict("supersede", None, ("old",))


def test_timestamps_outside_five_minutes_are_stale():
    at = NOW.timestamp()
    assert rules.check_timestamp(str(int(at - 299)), NOW)
    for header in (str(int(at - 301)), str(int(at + 301)), "", "yesterday", None):
        with pytest.raises(rules.StaleTimestampError):
            rules.check_timestamp(header, NOW)


def test_secrets_look_like_standard_webhooks_secrets_and_names_are_checked():
    secret = rules.new_secret()
    assert secret.startswith("whsec_") and secret != rules.new_secret()
    assert rules.check_source_name("corp-pki.v2") is None
    for bad in ("sources", "Has Space", "-dash", "x" * 65, ""):
        assert rules.check_source_name(bad) is not None
    assert rules.secret_active(None, NOW) and rules.secret_active(NOW + timedelta(seconds=1), NOW)
    assert not rules.secret_active(NOW, NOW)


def marks(status="running", approval=False, pending=None, exposure=False, changed=False):
    return Marks(status, approval, pending, exposure, changed)


def test_transitions_name_the_events_subscribers_hear_about():
    assert events_between(marks(), marks()) == []
    assert events_between(marks(), marks("paused", pending="propagation_wait")) == [
        "rotation.paused"
    ]
    assert events_between(marks(), marks("running", approval=True)) == [
        "rotation.awaiting_approval"
    ]
    assert events_between(marks(), marks("paused", pending="orphan_risk")) == [
        "rotation.paused",
        "site.at_risk",
    ]
    assert events_between(marks(), marks(exposure=True)) == ["exposure.exceeded"]
    assert events_between(marks("compensating"), marks("compensated")) == ["rotation.compensated"]
    assert events_between(marks(), marks("completed")) == ["rotation.completed"]
    assert events_between(marks(), marks("failed", changed=True)) == [
        "rotation.failed",
        "site.at_risk",
    ]
    assert events_between(marks(), marks("failed")) == ["rotation.failed"]
    # Paused for a second, different reason: heard again.
    assert events_between(
        marks("paused", pending="propagation_wait"), marks("paused", pending="step_failed")
    ) == ["rotation.paused"]


def test_subscribers_filter_by_event_site_and_change():
    sub = subs.Subscriber("s1", frozenset({"rotation.completed"}), "site-a", None)
    assert sub.wants("rotation.completed", site="site-a", change_id="X")
    assert not sub.wants("rotation.failed", site="site-a", change_id="X")
    assert not sub.wants("rotation.completed", site="site-b", change_id="X")
    change = subs.Subscriber("s2", frozenset(subs.EVENT_TYPES), None, "CHG1")
    assert change.wants("rotation.paused", site="any", change_id="CHG1")
    assert not change.wants("rotation.paused", site="any", change_id=None)


def test_retries_back_off_exponentially_and_stop_after_the_window():
    first = NOW
    delays = []
    for attempt in range(1, 6):
        at = subs.retry_at(attempts=attempt, now=NOW, first_at=first, base=30, cap=3600,
                           window=86400)  # fmt: skip
        assert at is not None
        delays.append((at - NOW).total_seconds())
    assert all(24 <= d <= 36 * 2**i for i, d in enumerate(delays))
    assert delays[-1] > delays[0] * 8
    capped = subs.retry_at(attempts=30, now=NOW, first_at=first, base=30, cap=3600, window=86400)
    assert capped is not None and (capped - NOW).total_seconds() <= 3600 * 1.2
    late = first + timedelta(hours=23, minutes=59)
    last = subs.retry_at(attempts=40, now=late, first_at=first, base=30, cap=3600, window=86400)
    assert last == first + timedelta(hours=24)
    over = first + timedelta(hours=24)
    assert (
        subs.retry_at(attempts=41, now=over, first_at=first, base=30, cap=3600, window=86400)
        is None
    )


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("172.16.5.5", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.10.1", "link-local"),
        ("fe80::1", "link-local"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "public"),
        ("fd00:ec2::254", "metadata"),
    ],
)
def test_internal_addresses_are_refused(address, why):
    reason = subs.refused_because(address, [])
    assert reason is not None and why in reason


def test_an_allowed_network_lets_its_addresses_through_and_public_ones_pass():
    allowed = [ipaddress.ip_network("127.0.0.0/8")]
    assert subs.refused_because("127.0.0.1", allowed) is None
    assert subs.refused_because("10.0.0.1", allowed) is not None
    assert subs.refused_because("93.184.216.34", []) is None


def test_callback_urls_must_be_https_without_credentials():
    assert subs.check_url("https://itsm.example.com/hook", allow_http=False) == (
        "https", "itsm.example.com", 443,
    )  # fmt: skip
    for url in ("http://itsm.example.com/", "ftp://x/", "https://user:pw@x.example/", "https:///x"):
        with pytest.raises(subs.AddressRefusedError):
            subs.check_url(url, allow_http=False)
    assert subs.check_url("http://127.0.0.1:8080/x", allow_http=True)[2] == 8080
