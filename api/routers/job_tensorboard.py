"""GET /v1/jobs/{id}/tensorboard: a training attempt's TensorBoard event files as a zip."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import StreamingResponse

from tass.api.auth import PrincipalDep
from tass.api.deps import SessionDep, StoreDep
from tass.api.routers.jobs import require_visible_job
from tass.core.tensorboard_files import tensorboard_artifacts

router = APIRouter(prefix="/v1/jobs", tags=["artifacts"])


@router.get(
    "/{job_id}/tensorboard",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}}, 404: {}},
)
def job_tensorboard(
    job_id: str,
    session: SessionDep,
    store: StoreDep,
    principal: PrincipalDep,
    attempt: Annotated[int | None, Query(ge=1, le=1000, description="Default: the latest.")] = None,
) -> StreamingResponse:
    """The zip of `train/` and `validation/` event files that the job's attempt wrote (its
    `tensorboard` artifact), with X-Checksum-Sha256 and X-Tass-Attempt."""
    require_visible_job(session, job_id, principal)
    found = [
        a
        for a in tensorboard_artifacts(session, job_id)
        if attempt is None or f"/attempt-{attempt}/" in a.key
    ]
    if not found:
        raise HTTPException(404, detail=f"job {job_id} has no TensorBoard files")
    artifact = found[-1]
    written_by = artifact.key.split("/attempt-", 1)[1].split("/", 1)[0]
    headers = {
        "Content-Length": str(artifact.size),
        "X-Checksum-Sha256": artifact.sha256,
        "X-Tass-Attempt": written_by,
        "Content-Disposition": f'attachment; filename="{job_id}-tensorboard.zip"',
    }
    return StreamingResponse(
        store.iter_range(artifact.key), headers=headers, media_type="application/zip"
    )
