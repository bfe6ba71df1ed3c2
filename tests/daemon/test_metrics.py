"""Real samples of this machine."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from opscaffold.daemon.metrics import MIN_WINDOW, MetricsSampler, tcp_connections


def nic_totals() -> tuple[int, int]:
    nics = psutil.net_io_counters(pernic=True)
    real = [c for name, c in nics.items() if name != "lo"]
    return sum(c.bytes_recv for c in real), sum(c.bytes_sent for c in real)


def test_every_field_is_sane() -> None:
    sampler = MetricsSampler()
    sample = sampler.sample()
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage("/")

    assert 0.0 <= sample.cpu_usage <= 100.0
    assert 0.0 < sample.memory_usage <= 100.0
    assert 0 < sample.memory_used <= memory.total
    assert 0.0 < sample.disk_usage <= 100.0
    assert 0 < sample.disk_used <= disk.total
    assert sample.network_rx >= 0
    assert sample.network_tx >= 0
    assert min(sample.load_avg_1, sample.load_avg_5, sample.load_avg_15) >= 0.0
    assert abs(sample.process_count - len(psutil.pids())) < 50
    assert sample.tcp_connections >= 0
    assert abs(sample.timestamp - time.time()) <= 2


def test_network_is_a_rate_between_two_samples_not_a_counter() -> None:
    before = nic_totals()
    sampler = MetricsSampler()
    sampler.sample()
    time.sleep(0.2)
    second = sampler.sample()  # waits out the rest of the minimum window
    after = nic_totals()
    # The two samples are at least MIN_WINDOW apart and within [before, after] of the counters.
    assert second.network_rx <= (after[0] - before[0]) / MIN_WINDOW
    assert second.network_tx <= (after[1] - before[1]) / MIN_WINDOW


def test_the_first_sample_covers_at_least_the_minimum_window() -> None:
    sampler = MetricsSampler()
    started = time.monotonic()
    sampler.sample()
    assert time.monotonic() - started >= MIN_WINDOW * 0.9


@pytest.fixture
def three_connections() -> Iterator[None]:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    accepted = [server.accept()[0] for _ in range(3)]
    yield
    for sock in [*clients, *accepted, server]:
        sock.close()


@pytest.mark.usefixtures("three_connections")
def test_tcp_connections_counts_established_ones() -> None:
    # Both ends of each loopback connection are established sockets of this host.
    assert tcp_connections() >= 6


def _sample_on_a_new_thread(sampler: MetricsSampler) -> float:
    result: list[float] = []
    worker = threading.Thread(target=lambda: result.append(sampler.sample().cpu_usage))
    worker.start()
    worker.join(timeout=10)
    return result[0]


@pytest.fixture
def cpu_load() -> Iterator[None]:
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait(timeout=10)


@pytest.mark.usefixtures("cpu_load")
def test_cpu_is_measured_whichever_thread_samples() -> None:
    # The daemon builds the sampler on the loop's thread and samples on a pool's threads.
    sampler = MetricsSampler()
    samples = [_sample_on_a_new_thread(sampler) for _ in range(3)]
    assert all(0.0 < cpu <= 100.0 for cpu in samples), samples
