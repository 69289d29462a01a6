"""The dataset of a submitted job or sweep as it is stored: a server-side path resolved inside
the data roots (recorded relative to the first root: a job never shows the server's folders),
an s3:// archive checked to lie in the service's bucket, or an uploaded dataset checked to be
the caller's and ready, with its sha256 recorded for lineage."""

from __future__ import annotations

from tass.api.errors import invalid
from tass.contract.spec import DatasetSpec
from tass.core.apikeys import Principal
from tass.core.datapaths import DatasetPathError, resolve_dataset_path, stored_dataset_path
from tass.core.datasets import s3_dataset_location, usable_dataset
from tass.core.db import Session
from tass.core.settings import Settings


def checked_dataset(
    dataset: DatasetSpec, settings: Settings, session: Session, principal: Principal
) -> dict[str, object]:
    """The dataset as the job records it; 422 naming `dataset.path`, or 404/409 naming the
    uploaded dataset (missing or another tenant's / not ready or not the pinned digest)."""
    data = dataset.model_dump(mode="json")
    if dataset.source != "dataset":  # jobs on other sources record what they always did
        del data["id"], data["sha256"]
    if dataset.source != "synthetic":  # the synthetic source's own knobs: a 1,000-image
        del data["num_examples"], data["num_classes"]  # folder is never "num_examples: 2000"
    if dataset.source == "dataset":
        if dataset.id is None:  # the spec's own validator already requires it
            raise invalid(["body", "dataset", "id"], "dataset.id is required for source dataset")
        # DatasetUnavailable: 404 or 409 naming dataset.id
        uploaded = usable_dataset(session, dataset.id, principal.scope, dataset.sha256)
        data["sha256"] = uploaded.sha256
        return data
    if dataset.path is None:
        return data
    try:
        if dataset.path.startswith("s3://"):
            s3_dataset_location(dataset.path, settings.resolved_artifact_url)
        else:
            roots = settings.resolved_data_roots
            data["path"] = stored_dataset_path(resolve_dataset_path(dataset.path, roots), roots)
    except (DatasetPathError, ValueError) as exc:
        raise invalid(["body", "dataset", "path"], f"dataset.path {dataset.path!r} {exc}") from exc
    return data
