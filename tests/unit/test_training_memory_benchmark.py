"""benchmarks/training_memory.py's readings: a process's private memory, and the processes its
threads fork (fairseq's data-loader workers are forked from a buffer thread, not the main one)."""
import importlib.util
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.helpers import REPO

if not Path("/proc/self/smaps_rollup").exists():
    pytest.skip("needs Linux's /proc/PID/smaps_rollup", allow_module_level=True)


def _bench():
    spec = importlib.util.spec_from_file_location("training_memory", REPO / "benchmarks" / "training_memory.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_children_forked_by_another_thread_are_found_and_private_memory_counts_writes():
    bench = _bench()
    started = []
    thread = threading.Thread(target=lambda: started.append(subprocess.Popen([sys.executable, "-c", (
        "import sys\nblock = bytearray(64 * 2**20)\nfor i in range(0, len(block), 4096):\n    block[i] = 1\n"
        "print('ready', flush=True)\nsys.stdin.read()\n")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)))
    thread.start()
    thread.join()
    (child,) = started
    try:
        assert child.stdout.readline().strip() == "ready"
        assert child.pid in bench.children(os.getpid())
        assert bench.private_mb(child.pid) >= 64  # the 64 MB it wrote are its own
    finally:
        child.communicate("")
    assert child.pid not in bench.children(os.getpid())
    assert bench.private_mb(child.pid) == 0.0  # gone: read as nothing, not an error
