"""The tass HTTP client and the `tass` command line.

`client.api_client.TassClient` talks to the API over HTTP; `client.cli` is the typer app. The
package never imports the server packages (api, worker, trainer) in-process; the service commands
(`tass migrate`, `tass up`) import `core` lazily, inside the command only.
"""
