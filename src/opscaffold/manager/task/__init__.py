"""Tasks (spec §3.2.8–3.2.9, §4.2.3): definitions, executions on nodes, signed envelopes."""
