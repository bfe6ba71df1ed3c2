"""Node metrics from the operating system (psutil), one NodeMetrics per sample.

CPU usage and network rx/tx are measured between this sample and the previous one, so the
sampler keeps the last counters itself. It does not use psutil.cpu_percent(interval=None):
that keeps its previous reading per calling thread, and samples taken on a pool's threads
(asyncio.to_thread) would each start from nothing and read 0. Loopback traffic is left out;
it says nothing about the node's load on the network.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from opscaffold.protocol.ops.daemon import daemon_pb2 as pb

# Shortest span a sample covers: cpu % and byte rates over a few milliseconds are noise.
MIN_WINDOW = 1.0
PROC_TCP = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
TCP_ESTABLISHED = "01"  # the `st` column of /proc/net/tcp


@dataclass(frozen=True, slots=True)
class _Counters:
    at: float  # monotonic
    rx: int
    tx: int
    cpu_busy: float  # seconds, all CPUs
    cpu_total: float


class MetricsSampler:
    def __init__(self, disk_path: str = "/") -> None:
        self.disk_path = disk_path
        # Rates measure since the previous reading: prime it, so the first real sample covers
        # the time since construction instead of reading 0.
        self._last = self._counters()

    def sample(self) -> pb.NodeMetrics:
        """Blocking (reads /proc, and the first sample may wait up to MIN_WINDOW): call it
        off the event loop."""
        since_last = time.monotonic() - self._last.at
        if since_last < MIN_WINDOW:
            time.sleep(MIN_WINDOW - since_last)
        memory = psutil.virtual_memory()
        disk = psutil.disk_usage(self.disk_path)
        load_1, load_5, load_15 = os.getloadavg()
        cpu, rx, tx = self._rates()
        return pb.NodeMetrics(
            cpu_usage=cpu,
            memory_usage=memory.percent,
            # What psutil's percent is computed from; `used` leaves out some reclaimable memory.
            memory_used=memory.total - memory.available,
            disk_usage=disk.percent,
            disk_used=disk.used,
            network_rx=rx,
            network_tx=tx,
            load_avg_1=load_1,
            load_avg_5=load_5,
            load_avg_15=load_15,
            process_count=len(psutil.pids()),
            tcp_connections=tcp_connections(),
            timestamp=int(time.time()),
        )

    def _counters(self) -> _Counters:
        nics = psutil.net_io_counters(pernic=True)
        real = [c for name, c in nics.items() if name != "lo"]
        busy, total = cpu_seconds(psutil.cpu_times())
        return _Counters(
            time.monotonic(),
            sum(c.bytes_recv for c in real),
            sum(c.bytes_sent for c in real),
            busy,
            total,
        )

    def _rates(self) -> tuple[float, int, int]:
        """CPU percent, rx and tx bytes per second since the previous reading."""
        now, before = self._counters(), self._last
        self._last = now
        cpu = cpu_percent(before.cpu_busy, before.cpu_total, now.cpu_busy, now.cpu_total)
        elapsed = now.at - before.at
        if elapsed <= 0:
            return cpu, 0, 0
        # A counter that went backwards (an interface removed, a wrap) gives no rate, not
        # a negative one.
        return (
            cpu,
            int(max(0, now.rx - before.rx) / elapsed),
            int(max(0, now.tx - before.tx) / elapsed),
        )


def cpu_seconds(times: Any) -> tuple[float, float]:
    """(busy, total) CPU seconds of a psutil.cpu_times() reading, counted as psutil does."""
    total = float(sum(times))
    # Linux counts guest time inside user and nice already.
    total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    # Linux does not count iowait as idle; the CPU does nothing meanwhile either.
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total


def cpu_percent(busy_before: float, total_before: float, busy: float, total: float) -> float:
    """Busy share of the CPU time between two readings, 0..100."""
    spent = total - total_before
    if spent <= 0:  # no clock tick between the readings
        return 0.0
    return round(min(100.0, max(0.0, (busy - busy_before) / spent * 100)), 1)


def tcp_connections() -> int:
    """Established TCP connections, IPv4 and IPv6.

    On Linux this reads /proc/net/tcp{,6} directly: psutil.net_connections would also map
    every socket to its process by scanning all /proc/*/fd (slow, and partial without root),
    and we only need the count. Elsewhere psutil answers, or 0 where it is not allowed to.
    """
    if PROC_TCP[0].exists():
        return sum(_established_in(path) for path in PROC_TCP)
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return 0
    return sum(1 for c in connections if c.status == psutil.CONN_ESTABLISHED)


def _established_in(path: Path) -> int:
    try:
        lines = path.read_text().splitlines()[1:]  # the first line is a header
    except OSError:  # e.g. IPv6 disabled: no tcp6 table
        return 0
    return sum(1 for line in lines if line.split()[3:4] == [TCP_ESTABLISHED])
