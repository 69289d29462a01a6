"""/v1/datasets: a tenant's image-folder archives, uploaded in one streamed request (the body
goes to the object store as it arrives, hashed on the way, never held in memory), validated
by a worker, then named by jobs as `{"source": "dataset", "id": ...}`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from functools import partial
from typing import Annotated, Any

from celery import Celery
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response, status
from kombu.exceptions import OperationalError as BrokerError
from starlette.concurrency import run_in_threadpool

from tass.api.auth import PrincipalDep
from tass.api.dataset_schemas import DatasetList, DatasetOut, dataset_out
from tass.api.deps import ProducerDep, SessionDep, SettingsDep, StoreDep
from tass.api.errors import found, invalid
from tass.api.pagination import page_limit
from tass.contract.statuses import DatasetStatus
from tass.core import datasets as dataset_store
from tass.core.apikeys import Principal
from tass.core.db import Session, after_commit
from tass.core.models import UploadedDataset, new_id
from tass.core.objectstore import ObjectStore
from tass.core.queue import VALIDATE_DATASET_TASK
from tass.core.settings import Settings

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])
log = logging.getLogger(__name__)

NAME_PATTERN = r"^[^\x00-\x1f\x7f/\\]{1,200}$"
UPLOAD_BODY = {
    "required": True,
    "content": {
        media: {"schema": {"type": "string", "format": "binary"}}
        for media in dataset_store.ARCHIVE_FORMATS
    },
}


def require_dataset(
    session: Session,
    dataset_id: str,
    principal: Principal,
    lock: dict[str, bool] | bool | None = None,
) -> UploadedDataset:
    """The caller's dataset; another tenant's is reported as missing (404)."""
    dataset = dataset_store.get_dataset(session, dataset_id, principal.scope, lock)
    return found(dataset, "dataset", dataset_id)


def too_large(detail: str) -> HTTPException:
    return HTTPException(413, detail=detail, headers={"Connection": "close"})


class UploadLimits:
    """The bytes this upload may still take: TASS_MAX_DATASET_BYTES, and what is left of the
    tenant's TASS_MAX_DATASET_BYTES_PER_TENANT; the refusal names whichever is reached."""

    def __init__(self, settings: Settings, tenant: str, stored: int) -> None:
        self.settings, self.tenant, self.stored = settings, tenant, stored

    def quota_refusal(self, size: int) -> HTTPException:
        quota = self.settings.max_dataset_bytes_per_tenant
        return too_large(
            f"dataset storage quota exceeded: tenant {self.tenant!r} stores {self.stored} "
            f"bytes of datasets and this upload needs {size} more; the quota "
            f"(TASS_MAX_DATASET_BYTES_PER_TENANT) is {quota} bytes: delete datasets first"
        )

    def check(self, size: int) -> None:
        largest = self.settings.max_dataset_bytes
        if size > largest:
            raise too_large(
                f"dataset archive is larger than {largest} bytes (TASS_MAX_DATASET_BYTES)"
            )
        if self.stored + size > self.settings.max_dataset_bytes_per_tenant:
            raise self.quota_refusal(size)


def _archive_format(content_type: str | None) -> str:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    archive_format = dataset_store.ARCHIVE_FORMATS.get(media)
    if archive_format is None:
        raise HTTPException(
            415,
            detail=f"Content-Type {media or 'missing'!r}: send the archive as application/gzip "
            "(.tar.gz), application/x-tar (.tar) or application/zip (.zip)",
        )
    return archive_format


def _declared_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    return int(raw) if raw is not None and raw.isdigit() else None


async def _counted(request: Request, limits: UploadLimits) -> AsyncIterator[bytes]:
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        limits.check(seen)
        if chunk:
            yield chunk


def _record(
    session: Session, limits: UploadLimits, store: ObjectStore, values: dict[str, Any]
) -> UploadedDataset:
    """Insert the row, checking the quota again against what is stored now (another upload
    of the tenant may have finished meanwhile, or be recording now: the check and the insert
    hold the tenant's quota lock); a refused upload's object is deleted. The request's
    transaction commits the row when the handler returns."""
    quota = limits.settings.max_dataset_bytes_per_tenant
    try:
        dataset = dataset_store.add_within_quota(session, quota, **values)
    except dataset_store.DatasetQuotaExceeded as exc:
        store.delete(str(values["key"]))
        limits.stored = exc.stored
        raise limits.quota_refusal(int(values["size"])) from exc
    session.flush()
    session.refresh(dataset)
    return dataset


def _send_validation(producer: Celery, settings: Settings, dataset_id: str) -> None:
    """Ask a worker to validate the committed dataset. With the broker down the dataset stays
    `pending` and the workers' housekeeping sends it again (`unstarted_validations`): the
    upload is kept either way."""
    try:
        producer.send_task(VALIDATE_DATASET_TASK, args=[dataset_id], queue=settings.evaluate_queue)
    except (BrokerError, OSError) as exc:
        log.warning("validation of dataset %s not sent (sent again later): %s", dataset_id, exc)


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DatasetOut,
    openapi_extra={"requestBody": UPLOAD_BODY},
    responses={413: {"description": "Over TASS_MAX_DATASET_BYTES or the tenant's quota."}},
)
async def upload_dataset(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    producer: ProducerDep,
    principal: PrincipalDep,
    name: Annotated[str, Query(pattern=NAME_PATTERN, description="A name to show and list.")],
    content_type: Annotated[str | None, Header()] = None,
) -> DatasetOut:
    """Upload an archive of class folders (`train/<class>/*.png|jpg`, optional `test/`, or
    class folders at the top) as the request body. It is stored as it arrives and hashed on
    the way; a worker then decodes every image and sets `status` to `ready` or `failed`."""
    archive_format = _archive_format(content_type)
    stored = await run_in_threadpool(dataset_store.stored_bytes, session, principal.tenant)
    # hold no connection, lock or session slot while the body streams (the record below
    # reopens the session for its short transaction)
    await run_in_threadpool(session.close)
    limits = UploadLimits(settings, principal.tenant, stored)
    limits.check(_declared_length(request) or 0)
    dataset_id = new_id()
    key = dataset_store.dataset_key(dataset_id, archive_format)
    uploaded = await store.put_stream(key, _counted(request, limits))
    if uploaded.size == 0:
        await run_in_threadpool(store.delete, key)
        raise invalid(["body"], "body: the archive is empty")
    values = {
        "id": dataset_id,
        "tenant": principal.tenant,
        "name": name,
        "archive_format": archive_format,
        "key": key,
        "size": uploaded.size,
        "sha256": uploaded.sha256,
    }
    dataset = await run_in_threadpool(_record, session, limits, store, values)
    after_commit(session, partial(_send_validation, producer, settings, dataset.id))
    response.headers["Location"] = f"/v1/datasets/{dataset.id}"
    return dataset_out(dataset)


@router.get("", response_model=DatasetList)
def list_datasets(
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Depends(page_limit(100))],
    status_: Annotated[DatasetStatus | None, Query(alias="status", description="Filter.")] = None,
) -> DatasetList:
    """The caller's datasets, newest first."""
    rows = dataset_store.list_datasets(session, principal.scope, limit, status_)
    return DatasetList(items=[dataset_out(row) for row in rows])


@router.get("/{dataset_id}", response_model=DatasetOut)
def get_dataset(dataset_id: str, session: SessionDep, principal: PrincipalDep) -> DatasetOut:
    return dataset_out(require_dataset(session, dataset_id, principal))


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_dataset(
    dataset_id: str, session: SessionDep, store: StoreDep, principal: PrincipalDep
) -> Response:
    """Delete the dataset and its stored archive; 409 while a queued or running job (or a
    running sweep) reads it. Jobs that ran on it keep its sha256 in their record."""
    dataset = require_dataset(session, dataset_id, principal, lock=dataset_store.EXCLUSIVE)
    users = dataset_store.users_of(session, dataset)
    if users:
        raise HTTPException(
            409,
            detail=f"dataset {dataset_id!r} is in use by {', '.join(users)}: cancel them or "
            "wait until they end",
        )
    dataset_store.delete_dataset(session, dataset)
    # the row first: no row ever names a deleted object
    after_commit(session, partial(store.delete, dataset.key))
    return Response(status_code=status.HTTP_204_NO_CONTENT)
