"""A DaemonService that stores nothing and answers at once: the ceiling our Manager is
measured against (same protocol, same load generator, no validation, no database)."""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc

from opscaffold.protocol.ops.daemon import daemon_pb2 as pb
from opscaffold.protocol.ops.daemon import daemon_pb2_grpc


class NoopServicer(daemon_pb2_grpc.DaemonServiceServicer):
    def __init__(self) -> None:
        self.next_id = 0

    async def Register(self, request: pb.RegisterRequest, context: Any) -> pb.RegisterResponse:
        self.next_id += 1
        token = f"osn_{uuid.uuid4().hex}"
        await context.send_initial_metadata((("x-ops-node-token", token),))
        return pb.RegisterResponse(
            node_id=self.next_id, heartbeat_interval=30, metric_interval=60, node_token=token
        )

    async def Heartbeat(self, request: pb.HeartbeatRequest, context: Any) -> pb.HeartbeatResponse:
        return pb.HeartbeatResponse(success=True)

    async def ReportMetrics(
        self, request: pb.ReportMetricsRequest, context: Any
    ) -> pb.ReportMetricsResponse:
        return pb.ReportMetricsResponse(success=True)

    async def Connect(
        self, request_iterator: AsyncIterator[pb.DaemonMessage], context: Any
    ) -> AsyncIterator[pb.ManagerMessage]:
        async for message in request_iterator:
            yield pb.ManagerMessage(ack=pb.StreamAck(seq=message.seq))


async def serve(port: int) -> None:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    daemon_pb2_grpc.add_DaemonServiceServicer_to_server(NoopServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args().port))
