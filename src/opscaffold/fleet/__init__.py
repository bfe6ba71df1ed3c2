"""The fleet simulator: many virtual daemons in one process, over real gRPC, for load tests and
demos. Each virtual node speaks through the daemon's own session code."""
