"""Fixtures for the client tests: the fake API and a `tass` runner bound to it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from client_fakes import BASE_URL, FakeApi
from typer.testing import CliRunner, Result

from tass.client.cli import CliState, app


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def run(api: FakeApi) -> Callable[..., Result]:
    """Run `tass ARGS...` against the fake API; returns typer's Result (stdout, stderr, code)."""
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        state = CliState(url=BASE_URL, transport=api.transport)
        return runner.invoke(app, list(args), obj=state)

    return invoke
