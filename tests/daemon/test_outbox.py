from __future__ import annotations

from opscaffold.daemon.outbox import MAX_OUTPUT_MESSAGE, Outbox
from opscaffold.protocol.ops.daemon import daemon_pb2 as pb


def metrics(n: int) -> pb.ReportMetricsRequest:
    return pb.ReportMetricsRequest(node_uuid="n", metrics=pb.NodeMetrics(timestamp=n))


def beat(n: int) -> pb.HeartbeatRequest:
    return pb.HeartbeatRequest(node_uuid="n", timestamp=n)


def done(command_id: str) -> pb.CommandResult:
    return pb.CommandResult(command_id=command_id, ok=True)


def drain(outbox: Outbox) -> list[pb.DaemonMessage]:
    sent = []
    while (message := outbox.next_message()) is not None:
        sent.append(message)
    return sent


def stamps(messages: list[pb.DaemonMessage]) -> list[int]:
    return [m.metrics.metrics.timestamp for m in messages if m.HasField("metrics")]


def refusal(seq: int, code: str) -> pb.StreamAck:
    return pb.StreamAck(seq=seq, refused=[pb.Refusal(seq=seq, code=code, message="why")])


def test_metrics_go_oldest_first_with_increasing_seq() -> None:
    outbox = Outbox()
    for n in range(1, 6):
        outbox.put_metrics(metrics(n))
    sent = drain(outbox)
    assert stamps(sent) == [1, 2, 3, 4, 5]
    assert [m.seq for m in sent] == [1, 2, 3, 4, 5]


def test_full_buffer_drops_the_oldest_and_counts_it() -> None:
    outbox = Outbox(capacity=3)
    for n in range(1, 6):
        outbox.put_metrics(metrics(n))
    assert outbox.dropped == 2
    assert outbox.metrics_held() == 3
    assert stamps(drain(outbox)) == [3, 4, 5]


def test_reports_on_the_wire_count_against_the_bound() -> None:
    outbox = Outbox(capacity=3)
    outbox.put_metrics(metrics(1))
    outbox.put_metrics(metrics(2))
    drain(outbox)  # both in flight, unacknowledged
    outbox.put_metrics(metrics(3))
    outbox.put_metrics(metrics(4))
    # The unsent 3 is dropped, never a report whose acknowledgement is on its way.
    assert outbox.dropped == 1
    assert outbox.metrics_held() == 3
    assert stamps(drain(outbox)) == [4]


def test_heartbeats_are_coalesced_and_go_first() -> None:
    outbox = Outbox()
    outbox.put_metrics(metrics(1))
    outbox.put_heartbeat(beat(10))
    outbox.put_heartbeat(beat(11))
    sent = drain(outbox)
    assert [m.WhichOneof("body") for m in sent] == ["heartbeat", "metrics"]
    assert sent[0].heartbeat.timestamp == 11


def test_command_results_go_before_reports_in_one_message() -> None:
    outbox = Outbox()
    outbox.put_metrics(metrics(1))
    outbox.put_result(done("a"))
    outbox.put_result(pb.CommandResult(command_id="b", ok=False, error="bad interval"))
    first = outbox.next_message()
    assert first is not None
    # Ids of the ones done too, for a Manager that reads no results.
    assert list(first.command_ack.command_ids) == ["a"]
    results = [(r.command_id, r.ok, r.error) for r in first.command_ack.results]
    assert results == [("a", True, ""), ("b", False, "bad interval")]


def test_without_results_command_results_wait_for_a_heartbeat() -> None:
    outbox = Outbox()
    outbox.put_result(done("a"))
    outbox.put_metrics(metrics(1))
    sent = outbox.next_message(results=False)
    assert sent is not None
    assert sent.WhichOneof("body") == "metrics"
    taken = outbox.take_results()
    assert [r.command_id for r in taken] == ["a"]
    outbox.return_results(taken)  # the heartbeat carrying them did not get through
    assert outbox.pending_acks() == ["a"]


def test_cumulative_ack_commits_everything_up_to_seq() -> None:
    outbox = Outbox()
    for n in range(1, 5):
        outbox.put_metrics(metrics(n))
    drain(outbox)
    outcome = outbox.acknowledge(pb.StreamAck(seq=3))
    assert [r.message.metrics.timestamp for r in outcome.committed] == [1, 2, 3]  # type: ignore[union-attr]
    assert outcome.refused == []
    assert outbox.metrics_held() == 1  # seq 4 still in flight


def test_invalid_argument_is_dropped_and_resource_exhausted_is_kept_in_order() -> None:
    outbox = Outbox()
    for n in range(1, 4):
        outbox.put_metrics(metrics(n))
    drain(outbox)
    outbox.put_metrics(metrics(4))
    ack = pb.StreamAck(
        seq=3,
        refused=[
            pb.Refusal(seq=1, code="INVALID_ARGUMENT", message="cpu_usage=1e9 out of range"),
            pb.Refusal(seq=2, code="RESOURCE_EXHAUSTED", message="busy"),
        ],
    )
    outcome = outbox.acknowledge(ack)
    assert [(r.code, r.kept) for r in outcome.refused] == [
        ("INVALID_ARGUMENT", False),
        ("RESOURCE_EXHAUSTED", True),
    ]
    assert outcome.retry_later
    assert len(outcome.committed) == 1  # seq 3
    # The kept report is older than the one queued since, so it goes first.
    assert stamps(drain(outbox)) == [2, 4]


def test_reconnect_resends_everything_unacknowledged_oldest_first() -> None:
    outbox = Outbox()
    for n in range(1, 4):
        outbox.put_metrics(metrics(n))
    outbox.put_result(done("cmd-1"))
    drain(outbox)
    outbox.acknowledge(pb.StreamAck(seq=2))  # the ack and metrics 1 are committed
    outbox.put_metrics(metrics(4))

    outbox.rewind()  # the stream broke
    resent = drain(outbox)
    assert stamps(resent) == [2, 3, 4]
    assert [m.seq for m in resent] == [1, 2, 3]  # a new stream counts from 1


def test_reconnect_resends_unacknowledged_command_acks() -> None:
    outbox = Outbox()
    outbox.put_result(done("cmd-1"))
    drain(outbox)
    outbox.rewind()
    assert outbox.pending_acks() == ["cmd-1"]


def test_a_stale_heartbeat_is_not_resent() -> None:
    outbox = Outbox()
    outbox.put_heartbeat(beat(1))
    drain(outbox)
    outbox.put_heartbeat(beat(2))
    drain(outbox)
    outbox.rewind()  # both were on the wire
    resent = drain(outbox)
    assert [m.heartbeat.timestamp for m in resent] == [2]

    outbox.put_heartbeat(beat(3))
    drain(outbox)
    outbox.put_heartbeat(beat(4))  # newer one waiting
    outbox.acknowledge(refusal(2, "RESOURCE_EXHAUSTED"))
    assert [m.heartbeat.timestamp for m in drain(outbox)] == [4]


def test_window_limits_messages_in_flight() -> None:
    outbox = Outbox(window=2)
    for n in range(1, 5):
        outbox.put_metrics(metrics(n))
    assert len(drain(outbox)) == 2
    outbox.acknowledge(pb.StreamAck(seq=1))
    assert stamps(drain(outbox)) == [3]


def test_unauthenticated_refusal_is_fatal() -> None:
    outbox = Outbox()
    outbox.put_metrics(metrics(1))
    drain(outbox)
    outcome = outbox.acknowledge(refusal(1, "UNAUTHENTICATED"))
    assert outcome.fatal is not None
    assert not outcome.retry_later


def test_oldest_unacknowledged_is_the_first_sent() -> None:
    outbox = Outbox()
    assert outbox.oldest_unacknowledged() is None
    outbox.put_metrics(metrics(1))
    outbox.put_metrics(metrics(2))
    outbox.next_message(now=100.0)
    outbox.next_message(now=105.0)
    assert outbox.oldest_unacknowledged() == 100.0
    outbox.acknowledge(pb.StreamAck(seq=1))
    assert outbox.oldest_unacknowledged() == 105.0


async def test_wait_wakes_when_something_is_queued() -> None:
    outbox = Outbox()
    outbox.put_metrics(metrics(1))
    await outbox.wait(5)  # already signalled: returns at once
    await outbox.wait(0.01)  # nothing new: times out
    assert outbox.next_message() is not None


def update(record_id: int, status: str, progress: int = 0) -> pb.UpdateStatusReport:
    return pb.UpdateStatusReport(record_id=record_id, status=status, progress=progress)


def updates(messages: list[pb.DaemonMessage]) -> list[tuple[str, int]]:
    return [
        (m.update_status.status, m.update_status.progress)
        for m in messages
        if m.HasField("update_status")
    ]


def test_update_states_go_one_at_a_time_in_order_beside_reports() -> None:
    outbox = Outbox()
    outbox.put_update(update(7, "downloading", 10))
    outbox.put_update(update(7, "downloading", 60))  # replaces the progress still waiting
    outbox.put_update(update(7, "installing"))
    outbox.put_metrics(metrics(1))
    first = drain(outbox)
    assert updates(first) == [("downloading", 60)]  # the next waits for this one's ack
    assert stamps(first) == [1]  # reports do not wait for it
    outbox.acknowledge(pb.StreamAck(seq=first[-1].seq))
    second = drain(outbox)
    assert updates(second) == [("installing", 0)]
    assert outbox.updates_unsettled()
    outbox.acknowledge(pb.StreamAck(seq=second[-1].seq))
    assert not outbox.updates_unsettled()


def test_an_update_state_to_retry_goes_first_and_a_refused_one_is_dropped() -> None:
    outbox = Outbox()
    outbox.put_update(update(7, "installing"))
    outbox.put_update(update(7, "verifying"))
    busy = drain(outbox)
    outcome = outbox.acknowledge(refusal(busy[0].seq, "UNAVAILABLE"))
    assert [(r.kind, r.kept) for r in outcome.refused] == [("update_status", True)]
    again = drain(outbox)
    assert updates(again) == [("installing", 0)]
    outcome = outbox.acknowledge(refusal(again[0].seq, "FAILED_PRECONDITION"))
    assert [(r.kind, r.kept) for r in outcome.refused] == [("update_status", False)]
    assert updates(drain(outbox)) == [("verifying", 0)]


def test_a_reconnect_resends_the_update_state_in_flight_first() -> None:
    outbox = Outbox()
    outbox.put_update(update(7, "installing"))
    drain(outbox)
    outbox.put_update(update(7, "verifying"))
    outbox.rewind()
    assert updates(drain(outbox)) == [("installing", 0)]


async def test_waiting_for_update_states_ends_once_they_are_acknowledged() -> None:
    outbox = Outbox()
    assert await outbox.wait_updates_settled(0.01)
    outbox.put_update(update(7, "verifying"))
    assert not await outbox.wait_updates_settled(0.01)
    sent = drain(outbox)
    outbox.acknowledge(pb.StreamAck(seq=sent[0].seq))
    assert await outbox.wait_updates_settled(0.01)


def task_result(execution_id: str, status: str) -> pb.TaskResultReport:
    return pb.TaskResultReport(execution_id=execution_id, status=status)


def test_task_results_go_one_at_a_time_in_order_and_come_back_after_a_reconnect() -> None:
    outbox = Outbox()
    outbox.put_task_result(task_result("a", "running"))
    outbox.put_task_result(task_result("a", "success"))
    outbox.put_metrics(metrics(1))
    first = drain(outbox)
    tasks = [m.task_result.status for m in first if m.HasField("task_result")]
    assert tasks == ["running"]  # the final state waits for this one's acknowledgement
    outbox.rewind()  # the connection ended before the Manager answered
    again = drain(outbox)
    assert [m.task_result.status for m in again if m.HasField("task_result")] == ["running"]
    outcome = outbox.acknowledge(pb.StreamAck(seq=again[-1].seq))
    assert outcome.refused == []
    last = drain(outbox)
    assert [m.task_result.status for m in last if m.HasField("task_result")] == ["success"]
    outcome = outbox.acknowledge(refusal(last[0].seq, "UNAVAILABLE"))
    assert [(r.kind, r.kept) for r in outcome.refused] == [("task_result", True)]
    assert outbox.pending_task_results() == [task_result("a", "success")]


def task_output(execution_id: str, offset: int, data: str) -> pb.TaskOutputReport:
    return pb.TaskOutputReport(execution_id=execution_id, offset=offset, data=data)


def test_output_parts_go_in_the_task_line_merged_while_they_wait() -> None:
    outbox = Outbox()
    outbox.put_task_result(task_result("a", "running"))
    outbox.put_task_output(task_output("a", 0, "line 1\n"))
    outbox.put_task_output(task_output("a", 7, "é\n"))  # follows: merged
    outbox.put_task_output(task_output("b", 0, "other\n"))  # another execution: its own
    outbox.put_task_output(task_output("b", 50, "gap\n"))  # does not follow: its own
    outbox.put_task_result(task_result("a", "success"))
    assert outbox.pending_task_output() == [
        task_output("a", 0, "line 1\né\n"),
        task_output("b", 0, "other\n"),
        task_output("b", 50, "gap\n"),
    ]
    line: list[str] = []
    while (message := outbox.next_message()) is not None:
        body = message.WhichOneof("body")
        line.append(body or "")
        outcome = outbox.acknowledge(pb.StreamAck(seq=message.seq))
        assert outcome.refused == []
    assert line == ["task_result", "task_output", "task_output", "task_output", "task_result"]


def test_an_output_part_refused_for_now_is_resent_before_what_follows_it() -> None:
    outbox = Outbox()
    outbox.put_task_output(task_output("a", 0, "x"))
    sent = outbox.next_message()
    assert sent is not None
    assert sent.HasField("task_output")
    outbox.put_task_result(task_result("a", "success"))
    assert outbox.next_message() is None  # one message of the line at a time
    outcome = outbox.acknowledge(refusal(sent.seq, "UNAVAILABLE"))
    assert [(r.kind, r.kept) for r in outcome.refused] == [("task_output", True)]
    again = outbox.next_message()
    assert again is not None
    assert again.task_output == task_output("a", 0, "x")


def test_merged_output_stays_below_the_message_cap() -> None:
    outbox = Outbox()
    half = "a" * (MAX_OUTPUT_MESSAGE // 2 + 1)
    outbox.put_task_output(task_output("a", 0, half))
    outbox.put_task_output(task_output("a", len(half), half))
    assert len(outbox.pending_task_output()) == 2
