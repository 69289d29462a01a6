"""`python -m client` runs the `tass` command line."""

from client.cli import main

main()
