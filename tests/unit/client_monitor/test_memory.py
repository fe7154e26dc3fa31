"""A watch's process fixes glibc's mmap threshold, so the arrays a 1M-client table frees as it
grows go back to the system instead of staying resident (docs/benchmarks.md, ~30 MB)."""

import platform

import pytest

from client_monitor.adapters.memory import pin_mmap_threshold

pytestmark = pytest.mark.unit


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc setting")
def test_the_mmap_threshold_is_fixed_where_the_c_library_is_glibc():
    assert pin_mmap_threshold() is True
