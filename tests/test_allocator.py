"""The allocator setting the command line makes: freed activation buffers are kept for reuse,
so a training loop's repeated allocations stop costing page faults."""

import platform
import resource
import sys

import pytest
import torch

from attnlab.device import keep_freed_memory

glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not glibc, reason="mallopt is glibc's")
def test_freed_buffers_are_reused_without_page_faults():
    assert keep_freed_memory()
    pages = 16 * 2**20 // resource.getpagesize()  # a 16 MB buffer: 4,096 pages of 4 KB

    def faults_of_twenty_steps() -> int:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(20):  # each "step" holds three 16 MB activations at once, then frees them
            buffers = [torch.empty(4 * 2**20) for _ in range(3)]
            for buffer in buffers:
                buffer.fill_(1.0)  # touch every page
            del buffers
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    faults_of_twenty_steps()  # the first step maps its pages once
    # glibc's defaults hand the freed top of the heap back: about 8,000 faults here
    assert faults_of_twenty_steps() < pages // 4


def test_off_glibc_it_says_so(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert keep_freed_memory() is False
