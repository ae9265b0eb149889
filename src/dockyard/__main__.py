"""`python -m dockyard` runs the `dockyard` command."""

from dockyard.cli import main

main()
