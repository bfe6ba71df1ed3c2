"""`python -m opscaffold.daemon`: the `ops-daemon` command, as a package's entry point runs it."""

from opscaffold.daemon.cli import main

main()
