"""The Agent: the per-node worker the daemon supervises. So far it answers `GET /health`;
executing the Manager's signed tasks (ARCHITECTURE §7) is not built yet."""
