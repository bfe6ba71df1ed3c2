"""`python -m opscaffold.daemon.agent --port P`: how the daemon starts its Agent."""

import typer

from opscaffold.daemon.agent.server import agent

typer.run(agent)
