"""/v1/registry: a tenant's model names, their numbered versions and movable aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Path, Query, Response, status

from tass.api.auth import PrincipalDep
from tass.api.deps import SessionDep
from tass.api.errors import found, invalid
from tass.api.pagination import PageLimit
from tass.api.registry_schemas import (
    AliasOut,
    AliasSet,
    MlflowMirrorOut,
    RegisteredModelOut,
    RegisteredModelPage,
    RegisteredModelSummary,
    RegisteredModelUpdate,
    VersionCreate,
    VersionCreated,
    VersionOut,
)
from tass.api.strict_json import StrictJSONRoute
from tass.core import registry as store
from tass.core.apikeys import Principal
from tass.core.db import Session
from tass.core.models import RegisteredModel, RegistryMirror
from tass.core.registry import ALIAS_PATTERN, NAME_PATTERN, ModelRefNotFound
from tass.core.registry_mirror import mirrors_of

router = APIRouter(prefix="/v1/registry", tags=["registry"], route_class=StrictJSONRoute)

NamePath = Annotated[
    str,
    Path(
        pattern=NAME_PATTERN,
        description="1-100 of A-Z a-z 0-9 . _ -, starting with a letter or digit.",
    ),
]
AliasPath = Annotated[
    str,
    Path(
        pattern=ALIAS_PATTERN,
        description="1-64 of A-Z a-z 0-9 _ -, starting with a letter.",
    ),
]


def require_registered(session: Session, name: str, principal: Principal) -> RegisteredModel:
    """The caller's registered name; names are per tenant, so another tenant's is a 404."""
    registered = store.get_registered(session, principal.tenant, name)
    return found(registered, "registered model", name)


def summary(registered: RegisteredModel, aliases: dict[str, int]) -> RegisteredModelSummary:
    return RegisteredModelSummary(
        name=registered.name,
        description=registered.description,
        tags=registered.tags or {},
        latest_version=registered.latest_version or None,
        aliases=aliases,
        created_at=registered.created_at,
        updated_at=registered.updated_at,
    )


def mirror_out(mirror: RegistryMirror | None) -> MlflowMirrorOut | None:
    if mirror is None:
        return None
    return MlflowMirrorOut.model_validate(
        {
            "status": mirror.status,
            "version": mirror.mlflow_version,
            "tries": mirror.tries,
            "error": mirror.error,
        }
    )


def detail(session: Session, registered: RegisteredModel) -> RegisteredModelOut:
    aliases = store.aliases_of(session, [registered.id])[registered.id]
    mirrors = mirrors_of(session, registered.id)
    versions = [
        VersionOut(
            version=row.version,
            model_id=row.model.id,
            created_at=row.created_at,
            metrics=row.model.metrics or {},
            job_id=row.job.id,
            dataset=row.job.dataset,
            mlflow=mirror_out(mirrors.get(row.version)),
        )
        for row in store.versions_of(session, registered)
    ]
    return RegisteredModelOut(**summary(registered, aliases).model_dump(), versions=versions)


@router.get("", response_model=RegisteredModelPage)
def list_registered(
    session: SessionDep,
    principal: PrincipalDep,
    limit: PageLimit,
    cursor: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
) -> RegisteredModelPage:
    """The caller's names in name order, each with its latest version and aliases."""
    rows, next_cursor = store.list_registered(session, principal.tenant, limit=limit, after=cursor)
    aliases = store.aliases_of(session, [r.id for r in rows])
    return RegisteredModelPage(
        items=[summary(r, aliases[r.id]) for r in rows], next_cursor=next_cursor
    )


@router.get("/{name}", response_model=RegisteredModelOut)
def get_registered(
    name: NamePath, session: SessionDep, principal: PrincipalDep
) -> RegisteredModelOut:
    """A name with every version (its model, metrics, training job and dataset) and aliases."""
    return detail(session, require_registered(session, name, principal))


@router.patch("/{name}", response_model=RegisteredModelOut)
def update_registered(
    name: NamePath,
    body: Annotated[RegisteredModelUpdate, Body()],
    session: SessionDep,
    principal: PrincipalDep,
) -> RegisteredModelOut:
    """Set the description and/or tags of a name (fields left out are kept)."""
    registered = require_registered(session, name, principal)
    if "description" in body.model_fields_set:
        registered.description = body.description
    if "tags" in body.model_fields_set:
        registered.tags = body.tags or {}
    session.flush()
    return detail(session, registered)


@router.post("/{name}/versions", response_model=VersionCreated, status_code=201)
def register_version(
    name: NamePath,
    body: Annotated[VersionCreate, Body()],
    response: Response,
    session: SessionDep,
    principal: PrincipalDep,
) -> VersionCreated:
    """Register a model of the caller's as the next version of `name` (created on first use).
    Registering a model the name already holds answers 200 with its existing version. A model
    its job logged to MLflow is mirrored to MLflow's registry by the worker afterwards (the
    version's `mlflow` field says how that went); this request never waits for MLflow."""
    try:
        model = store.resolve_model_ref(
            session, body.model_id, tenant=principal.tenant, scope=principal.tenant
        )
    except ModelRefNotFound as exc:
        raise invalid(["body", "model_id"], f"model_id: {exc}") from exc
    version, created = store.register_version(session, principal.tenant, name, model)
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/v1/registry/{name}"
    return VersionCreated(name=name, version=version, model_id=model.id, created=created)


@router.put("/{name}/aliases/{alias}", response_model=AliasOut)
def set_alias(
    name: NamePath,
    alias: AliasPath,
    body: Annotated[AliasSet, Body()],
    session: SessionDep,
    principal: PrincipalDep,
) -> AliasOut:
    """Point `alias` at a version (moving it when it exists); `NAME@ALIAS` follows it from
    the next request on."""
    registered = require_registered(session, name, principal)
    if not store.set_alias(session, registered, alias, body.version):
        raise invalid(["body", "version"], f"version: {name!r} has no version {body.version}")
    model = store.resolve_model_ref(
        session, f"{name}:{body.version}", tenant=principal.tenant, scope=principal.tenant
    )
    return AliasOut(name=name, alias=alias, version=body.version, model_id=model.id)


@router.delete("/{name}/aliases/{alias}", status_code=204)
def delete_alias(
    name: NamePath, alias: AliasPath, session: SessionDep, principal: PrincipalDep
) -> Response:
    registered = require_registered(session, name, principal)
    if not store.delete_alias(session, registered, alias):
        raise HTTPException(404, detail=f"{name!r} has no alias {alias!r}")
    return Response(status_code=204)


@router.delete(
    "/{name}/versions/{version}",
    status_code=204,
    responses={409: {"description": "Aliases still point at the version."}},
)
def delete_version(
    name: NamePath,
    version: Annotated[int, Path(ge=1, description="The version number.")],
    session: SessionDep,
    principal: PrincipalDep,
) -> Response:
    """Remove a version from the name (409 while an alias points at it: move the alias
    first). The trained model stays downloadable by its id; the number is never reused."""
    registered = require_registered(session, name, principal)
    deleted = store.delete_version(session, registered, version)  # 409 VersionInUse
    if not deleted:
        raise HTTPException(404, detail=f"{name!r} has no version {version}")
    return Response(status_code=204)
