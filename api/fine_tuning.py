"""A train job's `spec.init_from`, resolved at submit: the reference (a model id, NAME@ALIAS or
NAME:VERSION of the caller's own tenant) becomes the model id it names now, so the job trains
from that model even if an alias moves later, and the network fields the caller left unset
(model, architecture, width, batch_norm, image_size, channels) come from the parent's spec:
`init_from` alone fine-tunes the parent's own network."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from tass.api.errors import invalid
from tass.contract.spec import TrainSpec
from tass.core.apikeys import Principal
from tass.core.db import Session
from tass.core.registry import ModelRefNotFound, fine_tuning_parent

NETWORK_FIELDS = ("model", "architecture", "width", "batch_norm", "image_size", "channels")


def resolved_train_spec(spec: TrainSpec, session: Session, principal: Principal) -> dict[str, Any]:
    """The spec as the job records it; 422 naming spec.init_from when it names no model of
    the caller's tenant, or when the parent's network does not make a valid spec with it."""
    data = spec.model_dump(mode="json")
    if spec.init_from is None:
        return data
    try:
        parent, parent_spec = fine_tuning_parent(session, spec.init_from, principal.tenant)
    except ModelRefNotFound as exc:
        raise invalid(["body", "spec", "init_from"], f"spec.init_from: {exc}") from exc
    sent = spec.model_fields_set
    inherited = {f: parent_spec[f] for f in NETWORK_FIELDS if f not in sent and f in parent_spec}
    try:
        resolved = TrainSpec.model_validate({**data, **inherited, "init_from": parent.id})
    except ValidationError as exc:
        reason = "; ".join(str(err["msg"]) for err in exc.errors())
        raise invalid(
            ["body", "spec", "init_from"],
            f"spec.init_from: model {parent.id}'s network does not fit this spec: {reason}",
        ) from exc
    return resolved.model_dump(mode="json")
