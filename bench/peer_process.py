"""What a server costs the machine, read from outside it: the resident memory
and the CPU time of its process and every process under it (a server may fork
workers), through psutil."""

from __future__ import annotations

import psutil


def tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def rss_bytes(pid: int) -> int:
    """Resident memory of the process tree at `pid` (VmRSS, summed)."""
    total = 0
    for process in tree(pid):
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:  # a child that ended while we looked
            continue
    return total


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of the process tree at `pid`, so far."""
    total = 0.0
    for process in tree(pid):
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def megabytes(n: float) -> str:
    return f"{n / 1e6:.0f} MB"
