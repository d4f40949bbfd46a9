"""The peak memory `retain run` records per step: this process and everything it started."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil

from retain.run_commands import PeakMemory, tree_rss

HOLD = 300 * 2**20  # what the child holds: far above the noise of the parent's own memory

CHILD = f"""
import sys, time
block = bytearray({HOLD})
block[::4096] = b"x" * len(block[::4096])  # touched: resident, not just reserved
print("ready", flush=True)
time.sleep(60)
"""


def _start_holder() -> subprocess.Popen:
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    return child


def test_tree_rss_counts_the_children_as_psutil_does():
    child = _start_holder()
    try:
        me = psutil.Process(os.getpid())
        by_psutil = me.memory_info().rss + sum(
            c.memory_info().rss for c in me.children(recursive=True)
        )
        read = tree_rss(os.getpid())
        assert read >= me.memory_info().rss + HOLD
        assert abs(read - by_psutil) < 32 * 2**20  # the two reads are a moment apart
    finally:
        child.kill()
        child.wait()
    assert tree_rss(os.getpid()) < read - HOLD // 2  # the child's memory left with it


def test_the_peak_of_a_step_includes_a_child_that_came_and_went():
    with PeakMemory(every=0.02) as memory:
        child = _start_holder()
        time.sleep(0.2)
        child.kill()
        child.wait()
    assert memory.mb * 2**20 >= HOLD + psutil.Process(os.getpid()).memory_info().rss * 0.5
