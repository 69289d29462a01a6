"""The service commands: their command lines, and the supervisor behind `tass up`.

The children here are tiny `python -c` programs, not the real API or worker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tass import operators
from tass.client import cli
from tass.operators import service, service_cli
from tass.operators import supervisor as supervisor_module
from tass.operators.supervisor import Child, Outcome, Supervisor

REPO = Path(operators.__file__).resolve().parents[1]
PY = sys.executable
SLEEPER = Child("sleeper", [PY, "-c", "import time; time.sleep(60)"])
EXIT_3 = Child("quitter", [PY, "-c", "import sys; sys.exit(3)"])
HEALTH_SERVER = """
import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def wait_for(path: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# -- the supervisor -----------------------------------------------------------------------------


def test_when_one_child_exits_the_other_is_stopped():
    with Supervisor([SLEEPER, EXIT_3], stop_timeout=5) as supervisor:
        assert supervisor.wait(timeout=10) is Outcome.CHILD_EXITED
        assert supervisor.exited() == ("quitter", 3)
    assert supervisor.processes["sleeper"].returncode == -signal.SIGTERM


def test_a_worker_that_exits_after_sigterm_is_started_again(tmp_path: Path):
    """`tass up`: a worker sent SIGTERM on its own (its job checkpointed and handed back) is
    started again, so the job resumes here; any other exit still stops the service."""
    starts = tmp_path / "starts"
    worker = Child(
        "worker",
        [
            PY,
            "-c",
            "import pathlib, sys, time\n"
            "log = pathlib.Path(sys.argv[1])\n"
            "log.write_text(log.read_text() + 'x' if log.exists() else 'x')\n"
            "time.sleep(60)",
            str(starts),
        ],
        restart_after=supervisor_module.AFTER_SIGTERM,
    )
    restarted: list[str] = []
    with Supervisor([worker, SLEEPER], stop_timeout=5, on_restart=restarted.append) as sup:
        wait_for(starts)
        first = sup.processes["worker"]
        first.send_signal(signal.SIGTERM)
        assert sup.wait(lambda: starts.read_text() == "xx", timeout=20) is Outcome.READY
        assert restarted == ["worker"] and sup.processes["worker"] is not first
        sup.processes["worker"].kill()  # SIGKILL is not a stop request: the service stops
        assert sup.wait(timeout=10) is Outcome.CHILD_EXITED
        assert sup.exited() == ("worker", 128 + signal.SIGKILL)


def test_a_stop_request_terminates_every_child():
    other = Child("other", SLEEPER.argv)
    with Supervisor([SLEEPER, other], stop_timeout=5) as supervisor:
        threading.Timer(0.2, supervisor.request_stop).start()
        assert supervisor.wait(timeout=10) is Outcome.STOP_REQUESTED
    codes = [p.returncode for p in supervisor.processes.values()]
    assert codes == [-signal.SIGTERM, -signal.SIGTERM]


def test_a_child_ignoring_sigterm_is_killed_after_the_timeout(tmp_path: Path):
    ready = tmp_path / "ready"
    stubborn = Child(
        "stubborn",
        [
            PY,
            "-c",
            "import pathlib, signal, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "pathlib.Path(sys.argv[1]).touch()\n"
            "time.sleep(60)",
            str(ready),
        ],
    )
    started = time.monotonic()
    with Supervisor([stubborn], stop_timeout=0.5) as supervisor:
        wait_for(ready)
    assert supervisor.processes["stubborn"].returncode == -signal.SIGKILL
    assert time.monotonic() - started < 10


def test_run_services_waits_for_health_then_stops_when_a_child_dies():
    port = service.free_port()
    api = Child("api", [PY, "-c", HEALTH_SERVER, str(port)])
    # the worker dies only once the api answers, however slowly a loaded machine starts it
    dies_after_ready = (
        "import sys, time, urllib.request\n"
        "while True:\n"
        "    try:\n"
        f"        urllib.request.urlopen('http://127.0.0.1:{port}/healthz', timeout=1); break\n"
        "    except OSError:\n"
        "        time.sleep(0.05)\n"
        "time.sleep(2); sys.exit(4)\n"
    )
    worker = Child("worker", [PY, "-c", dies_after_ready])
    messages: list[str] = []
    ready: list[bool] = []

    code = service.run_services(
        [api, worker],
        f"http://127.0.0.1:{port}/healthz",
        on_ready=lambda: ready.append(True),
        report=messages.append,
        ready_timeout=20,
        stop_timeout=5,
    )

    assert code == 1
    assert ready == [True]
    assert messages == ["the worker exited with status 4; stopping the api"]


def test_run_services_gives_up_when_health_never_answers():
    messages: list[str] = []

    code = service.run_services(
        [SLEEPER],
        "http://127.0.0.1:9/healthz",
        on_ready=lambda: pytest.fail("not ready"),
        report=messages.append,
        ready_timeout=0.3,
        is_healthy=lambda _url: False,
    )

    assert code == 1
    assert "did not answer" in messages[0]


def test_sigterm_stops_tass_up_and_its_children_cleanly(tmp_path: Path):
    port = service.free_port()
    script = f"""
import pathlib, sys
from tass.operators.service import run_services
from tass.operators.supervisor import Child
api = Child("api", [sys.executable, "-c", {HEALTH_SERVER!r}, "{port}"])
worker = Child("worker", [sys.executable, "-c", "import time; time.sleep(60)"])
code = run_services(
    [api, worker], "http://127.0.0.1:{port}/healthz",
    on_ready=lambda: pathlib.Path({str(tmp_path / "ready")!r}).touch(),
    report=print, stop_timeout=5,
)
sys.exit(code)
"""
    process = subprocess.Popen([PY, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        wait_for(tmp_path / "ready")
        children = _child_pids(process.pid)
        assert len(children) == 2
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        process.kill()
    assert "stopping" in process.stdout.read()
    assert not any(alive(pid) for pid in children)


def _child_pids(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if not children.exists():
        pytest.skip("needs /proc/PID/task/PID/children (Linux)")
    return [int(part) for part in children.read_text().split()]


def test_run_child_forwards_sigterm_and_returns_the_childs_status(tmp_path: Path):
    ready, got = tmp_path / "ready", tmp_path / "got"
    child = (
        "import pathlib, signal, sys, time\n"
        f"def stop(*_): pathlib.Path({str(got)!r}).write_text('TERM'); sys.exit(7)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "time.sleep(60)"
    )
    script = (
        "import sys\n"
        "from tass.operators.supervisor import Child, run_child\n"
        f"sys.exit(run_child(Child('c', [sys.executable, '-c', {child!r}])))"
    )
    process = subprocess.Popen([PY, "-c", script], cwd=REPO)
    try:
        wait_for(ready)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 7
    finally:
        process.kill()
    assert got.read_text() == "TERM"


# -- the commands -------------------------------------------------------------------------------


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[Child]:
    """Children that `tass api` / `tass worker` would run (run_child is replaced)."""
    children: list[Child] = []

    def fake_run_child(child: Child) -> int:
        children.append(child)
        return 0

    monkeypatch.setattr(service_cli, "run_child", fake_run_child)
    return children


def test_api_command(started):
    result = CliRunner().invoke(cli.app, ["api", "--host", "0.0.0.0", "--port", "9000"])

    assert result.exit_code == 0, result.output
    assert started[0].argv == service.api_command("0.0.0.0", 9000)
    # the header-timeout protocol (tests/integration/test_header_timeout.py checks it works)
    assert "tass.api.http_protocol:HeaderTimeoutProtocol" in started[0].argv


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("0.0.0.0", None),
        ("127.0.0.1", None),
        ("192.0.2.10", "192.0.2.10"),
        ("2001:db8::5", "[2001:db8::5]"),
    ],
)
def test_the_api_answers_the_address_it_binds(started, monkeypatch, host, allowed):
    """The API answers only loopback names and TASS_ALLOWED_HOSTS: a specific address it binds
    is added to them (the URL the user is shown), a wildcard is left to the operator."""
    monkeypatch.delenv("TASS_ALLOWED_HOSTS", raising=False)
    result = CliRunner().invoke(cli.app, ["api", "--host", host, "--port", "9000"])

    assert result.exit_code == 0, result.output
    assert (started[0].env or {}).get("TASS_ALLOWED_HOSTS") == allowed


def test_worker_command_with_queues_gpus_and_concurrency(started):
    args = ["worker", "--queues", "train, evaluate", "--gpus", "0,1", "-c", "2"]
    result = CliRunner().invoke(cli.app, args)

    assert result.exit_code == 0, result.output
    (child,) = started
    assert child.argv == service.worker_command("train,evaluate", 2)
    assert child.argv[child.argv.index("-Q") :][:2] == ["-Q", "train,evaluate"]
    assert child.argv[child.argv.index("-c") :][:2] == ["-c", "2"]
    # one slot per GPU: the scheduler places a job per GPU on this worker
    assert child.env == {"CUDA_VISIBLE_DEVICES": "0,1", "TASS_WORKER_SLOTS": "2"}


def test_worker_defaults_leave_queues_gpus_and_processes_alone(started):
    assert CliRunner().invoke(cli.app, ["worker"]).exit_code == 0

    (child,) = started
    assert "-Q" not in child.argv and "-c" not in child.argv  # one process per slot (the app's)
    assert child.argv[-2:] == ["--pool", "prefork"]
    assert not child.env


def test_worker_slots_and_pool_reach_the_worker_as_settings(started):
    result = CliRunner().invoke(cli.app, ["worker", "--slots", "3", "--pool", "a100"])

    assert result.exit_code == 0, result.output
    (child,) = started
    assert child.env == {"TASS_WORKER_SLOTS": "3", "TASS_WORKER_POOL": "a100"}


def test_worker_rejects_a_bad_pool_name(started):
    result = CliRunner().invoke(cli.app, ["worker", "--pool", "a100/x"])

    assert result.exit_code == 2
    assert started == []


def test_worker_rejects_bad_gpus(started):
    result = CliRunner().invoke(cli.app, ["worker", "--gpus", "first"])

    assert result.exit_code == 2
    assert started == []


def test_migrate_calls_core_lazily(monkeypatch: pytest.MonkeyPatch):
    calls: list[str | None] = []
    fake = types.ModuleType("tass.migrations.runner")
    fake.upgrade = calls.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tass.migrations.runner", fake)

    assert CliRunner().invoke(cli.app, ["migrate"]).exit_code == 0
    assert CliRunner().invoke(cli.app, ["migrate", "--database-url", "sqlite:///x"]).exit_code == 0
    assert calls == [None, "sqlite:///x"]


def test_a_failing_migration_is_one_message(monkeypatch: pytest.MonkeyPatch):
    def upgrade(_url: str | None) -> None:
        raise ConnectionError("database at postgres:5432 refused the connection")

    monkeypatch.setitem(
        sys.modules, "tass.migrations.runner", types.SimpleNamespace(upgrade=upgrade)
    )

    result = CliRunner().invoke(cli.app, ["migrate"])

    assert result.exit_code == 1
    assert "refused the connection" in result.stderr
    assert "Traceback" not in result.output


def test_up_sets_the_data_dir_migrates_then_runs_api_worker_and_serving(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("TASS_DATA_DIR", "restored-after-the-test")
    monkeypatch.setenv("TASS_SERVE_URL", "restored-after-the-test")
    steps: list[object] = []
    monkeypatch.setattr(service, "migrate", lambda: steps.append(os.environ["TASS_DATA_DIR"]))

    def fake_run_services(children, health_url, *, on_ready, **_kwargs):
        steps.append(([c.name for c in children], children[0].argv[-4:], health_url))
        steps.append(children[2].argv[-5:])
        on_ready()
        return 0

    monkeypatch.setattr(service, "run_services", fake_run_services)
    monkeypatch.setattr(
        service_cli, "ensure_admin_key", lambda url: steps.append(url) or "tass_new_key"
    )
    args = ["up", "--host", "0.0.0.0", "--port", "8100", "--data-dir", str(tmp_path / "d")]
    args += ["--serve-port", "8199"]

    result = CliRunner().invoke(cli.app, args)

    assert result.exit_code == 0, result.output
    assert steps == [
        str(tmp_path / "d"),
        "http://127.0.0.1:8100",
        (
            ["api", "worker", "serving"],
            ["--host", "0.0.0.0", "--port", "8100"],
            "http://127.0.0.1:8100/healthz",
        ),
        ["--host", "127.0.0.1", "--port", "8199", "--no-access-log"],
    ]
    assert os.environ["TASS_SERVE_URL"] == "http://127.0.0.1:8199"  # what the API child reads
    assert "tass is up at http://127.0.0.1:8100" in result.stderr
    assert "http://127.0.0.1:8100/docs" in result.stderr
    assert "tass_new_key" in result.stderr, "the first start prints its admin key once"


def test_up_says_where_the_cli_is_when_tass_is_not_on_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setenv("TASS_DATA_DIR", "restored-after-the-test")
    monkeypatch.setenv("TASS_SERVE_URL", "restored-after-the-test")
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "tass").write_text("#!/bin/sh\n")
    monkeypatch.setattr(service_cli.sys, "executable", str(venv_bin / "python"))
    monkeypatch.setattr(service, "migrate", lambda: None)
    monkeypatch.setattr(service, "run_services", lambda _c, _h, *, on_ready, **_k: on_ready())
    monkeypatch.setattr(service_cli, "ensure_admin_key", lambda url: None)
    monkeypatch.setattr(service_cli.shutil, "which", lambda name: None)
    args = ["up", "--data-dir", str(tmp_path / "d"), "--serve-port", "8199"]

    hidden = CliRunner().invoke(cli.app, args)

    assert hidden.exit_code == 0, hidden.output
    assert f"the tass CLI is {venv_bin / 'tass'}" in hidden.stderr
    assert f"source {venv_bin / 'activate'}" in hidden.stderr
    monkeypatch.setattr(service_cli.shutil, "which", lambda name: str(venv_bin / "tass"))
    on_path = CliRunner().invoke(cli.app, args)
    assert "the tass CLI is" not in on_path.stderr  # plain `tass` is this one already


def test_api_with_workers_runs_uvicorn_workers_sharing_one_metrics_folder(
    started, tmp_path, monkeypatch
):
    folder = tmp_path / "prometheus"
    folder.mkdir()
    (folder / "counter_4242.db").write_bytes(b"a previous run's counts")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))

    result = CliRunner().invoke(cli.app, ["api", "--workers", "2"])

    assert result.exit_code == 0, result.output
    assert started[0].argv[-2:] == ["--workers", "2"]
    assert started[0].env == {"PROMETHEUS_MULTIPROC_DIR": str(folder)}
    assert list(folder.iterdir()) == [], "counters start at zero"
    assert CliRunner().invoke(cli.app, ["api", "--workers", "0"]).exit_code != 0
