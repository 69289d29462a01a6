"""The tass HTTP client and the `tass` command line.

`client.api_client.TassClient` talks to the API over HTTP; `client.cli` is the typer app. The
package never imports the server packages (core, api, worker, trainer, serving, migrations) nor
the operator commands (`tass.operators`, which add themselves to the app through an entry point).
"""
