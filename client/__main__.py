"""`python -m tass.client` runs the `tass` command line."""

from tass.client.cli import main

main()
