"""The operator commands of the `tass` CLI: run the service (`up`, `api`, `worker`, `serve`,
`migrate`) and administer it (`keys`, `gc`), and the process supervisor behind `tass up`.

They join the `tass` command line through the `tass.cli` entry point group (`operators.cli`
registers them); the light client in `tass.client` never imports this package. The modules here
import only light packages at the top: the server packages (`tass.core`, `tass.migrations`) are
imported inside a command, after it has checked that the server install is present, and the API,
worker and serving processes are started as child processes by module path.
"""
