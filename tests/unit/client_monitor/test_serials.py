import pytest

from client_monitor.domain.serials import is_target_or_later, parse_serial

pytestmark = pytest.mark.unit


def test_parses_the_group_prefix_and_the_gmt_time_with_milliseconds():
    parsed = parse_serial("A3AF-01/30/2012 23:50:54 284")
    assert parsed is not None
    assert parsed.group_prefix == "A3AF"
    assert parsed.changed_at_ms == 1327967454284


@pytest.mark.parametrize(
    "held, reached",
    [
        ("A3AF-01/30/2012 23:50:54 284", True),  # the target itself
        ("A3AF-01/30/2012 23:50:54 285", True),  # one millisecond later
        ("A3AF-02/01/2012 00:00:00 000", True),  # a later change (maintenance, replication)
        ("A3AF-01/30/2012 23:50:54 283", False),  # the policy before our change
        ("A3AF-12/31/2011 23:59:59 999", False),  # month/day order, not string order
        ("B7C1-03/01/2013 00:00:00 000", False),  # a later serial of another group
        ("garbage", False),
        ("", False),
        (None, False),
    ],
)
def test_reached_means_the_target_or_a_later_serial_of_the_same_group(held, reached):
    assert is_target_or_later(held, "A3AF-01/30/2012 23:50:54 284") is reached


def test_a_serial_that_cannot_be_parsed_counts_only_when_identical():
    assert is_target_or_later("custom-serial", "custom-serial")
    assert not is_target_or_later("custom-serial-2", "custom-serial")


def test_impossible_dates_are_not_serials():
    assert parse_serial("A3AF-02/30/2012 23:50:54 284") is None
