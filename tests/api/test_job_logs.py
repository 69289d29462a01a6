"""GET /v1/jobs/{id}/logs and `tass logs`: a job's captured lines, paged, tailed, followed,
and only for the job's own tenant."""

from __future__ import annotations

import threading
import time

from tass.contract.statuses import JobStatus
from tass.core.job_logs import LogLine, drop_oldest, store_chunk
from tass.core.job_transitions import transition
from tass.core.objectstore import ObjectStore
from tests.api.conftest import bearer
from tests.api.test_jobs import submit


def ship(db, settings, job_id: str, attempt: int, seq: int, lines: list[tuple[str, str]]) -> int:
    store = ObjectStore(settings.resolved_artifact_url)
    stamped = [LogLine(f"2026-12-07T10:00:{n:02d}.000Z", s, t) for n, (s, t) in enumerate(lines)]
    return store_chunk(db, store, job_id, attempt, seq, stamped)


def test_a_jobs_lines_page_by_offset_with_their_stream_and_attempt(client, db, settings):
    job_id = submit(client)["id"]
    ship(db, settings, job_id, 1, 0, [("stdout", "epoch 1"), ("stderr", "W tensorflow: slow")])
    ship(db, settings, job_id, 1, 1, [("stdout", "epoch 2"), ("stderr", "Traceback ...")])
    ship(db, settings, job_id, 2, 0, [("stdout", "attempt 2 starts")])

    page = client.get(f"/v1/jobs/{job_id}/logs").json()
    assert [(i["attempt"], i["stream"], i["line"]) for i in page["items"]] == [
        (1, "stdout", "epoch 1"),
        (1, "stderr", "W tensorflow: slow"),
        (1, "stdout", "epoch 2"),
        (1, "stderr", "Traceback ..."),
        (2, "stdout", "attempt 2 starts"),
    ]
    assert page["items"][0]["at"] == "2026-12-07T10:00:00.000Z"
    assert page["next_offset"] == 5 and page["finished"] is False

    first = client.get(f"/v1/jobs/{job_id}/logs", params={"offset": 0, "limit": 3}).json()
    assert [i["line"] for i in first["items"]] == ["epoch 1", "W tensorflow: slow", "epoch 2"]
    rest = client.get(f"/v1/jobs/{job_id}/logs", params={"offset": first["next_offset"]}).json()
    assert [i["line"] for i in rest["items"]] == ["Traceback ...", "attempt 2 starts"]

    tail = client.get(f"/v1/jobs/{job_id}/logs", params={"tail": 2, "attempt": 1}).json()
    assert [i["line"] for i in tail["items"]] == ["epoch 2", "Traceback ..."]
    second = client.get(f"/v1/jobs/{job_id}/logs", params={"attempt": 2}).json()
    assert [i["line"] for i in second["items"]] == ["attempt 2 starts"]


def test_another_tenant_gets_404(client, app, keys, db, settings):
    job_id = submit(client)["id"]
    ship(db, settings, job_id, 1, 0, [("stdout", "acme's secret sauce")])
    from fastapi.testclient import TestClient

    globex = TestClient(app, headers=bearer(keys["globex"]))
    for params in ({}, {"tail": 5}, {"follow": "true", "wait": 0}):
        response = globex.get(f"/v1/jobs/{job_id}/logs", params=params)
        assert response.status_code == 404
        assert "secret sauce" not in response.text
    assert client.get("/v1/jobs/nope/logs").status_code == 404


def test_dropped_chunks_are_named_by_one_line(client, db, settings):
    job_id = submit(client)["id"]
    for seq in range(4):
        ship(db, settings, job_id, 1, seq, [("stdout", f"chunk {seq} line {n}") for n in range(3)])
    drop_oldest(db, ObjectStore(settings.resolved_artifact_url), job_id, 1, max_bytes=1)
    page = client.get(f"/v1/jobs/{job_id}/logs").json()
    assert page["items"][0]["stream"] == "tass"
    assert page["items"][0]["line"].startswith("[tass] 9 lines (")
    assert [i["line"] for i in page["items"][1:]] == [f"chunk 3 line {n}" for n in range(3)]
    later = client.get(f"/v1/jobs/{job_id}/logs", params={"offset": 4}).json()
    assert later["items"][0]["stream"] == "tass"  # still named, from inside the dropped run
    assert later["next_offset"] == 12


def test_follow_waits_for_new_lines_and_ends_when_the_job_is_final(client, db, settings):
    job_id = submit(client)["id"]
    ship(db, settings, job_id, 1, 0, [("stdout", "first")])

    def later() -> None:
        time.sleep(0.5)
        ship(db, settings, job_id, 1, 1, [("stdout", "second")])

    writer = threading.Thread(target=later)
    writer.start()
    page = client.get(
        f"/v1/jobs/{job_id}/logs", params={"offset": 1, "follow": "true", "wait": 10}
    ).json()
    writer.join()
    assert [i["line"] for i in page["items"]] == ["second"]
    with db() as session:
        transition(session, job_id, JobStatus.CANCELLED)
        session.commit()
    done = client.get(
        f"/v1/jobs/{job_id}/logs", params={"offset": 2, "follow": "true", "wait": 10}
    ).json()
    assert done == {"items": [], "next_offset": 2, "finished": True}


def test_tass_logs_prints_the_lines_and_follows_to_the_end(client, db, settings, tass_cli):
    job_id = submit(client)["id"]
    ship(db, settings, job_id, 1, 0, [("stdout", "hello from stdout"), ("stderr", "a warning")])
    ship(db, settings, job_id, 2, 0, [("stdout", "retry")])
    with db() as session:
        transition(session, job_id, JobStatus.CANCELLED)
        session.commit()
    printed = tass_cli("logs", job_id, "-f")
    assert printed.exit_code == 0, printed.output
    assert printed.output.splitlines() == ["hello from stdout", "[stderr] a warning", "retry"]
    only = tass_cli("logs", job_id, "--attempt", "2")
    assert only.output.splitlines() == ["retry"]
    tail = tass_cli("logs", job_id, "--tail", "1", "--timestamps")
    assert tail.output.splitlines() == ["2026-12-07T10:00:00.000Z retry"]
    assert tass_cli("logs", "nope").exit_code != 0
