"""`python -m smartsync` runs the command line."""

from smartsync.cli import main

main()
