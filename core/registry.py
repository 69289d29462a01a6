"""The model registry (names, numbered versions, aliases, per tenant) and model references:
a model id, `NAME@ALIAS` or `NAME:VERSION`, resolved to one model by `resolve_model_ref`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Delete, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from tass.core.clock import database_now
from tass.core.db import changed_rows
from tass.core.errors import DomainError
from tass.core.models import Job, Model, ModelAlias, ModelVersion, RegisteredModel
from tass.core.registry_mirror import queue_mirror

# Names and aliases never contain "@" or ":", so a reference always parses one way.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$"
ALIAS_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
_NAME = re.compile(NAME_PATTERN)
_ALIAS = re.compile(ALIAS_PATTERN)
_VERSION = re.compile(r"^[1-9][0-9]{0,8}$")


class ModelRefNotFound(DomainError, LookupError):
    """A reference that names no model the caller may see (the message says which part): 404
    where the reference is the path; a request field naming it is a 422 (its caller says)."""

    status_code = 404


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference: exactly one of `model_id`, or `name` with `alias` or `version`."""

    model_id: str | None = None
    name: str | None = None
    alias: str | None = None
    version: int | None = None


@dataclass(frozen=True)
class VersionRow:
    """One registered version with what it came from (its model, job and dataset)."""

    version: int
    model: Model
    job: Job
    created_at: Any


def parse_model_ref(ref: str) -> ModelRef:
    """`NAME@ALIAS`, `NAME:VERSION` or a model id; raises ModelRefNotFound when malformed."""
    if "@" in ref:
        name, alias = ref.split("@", 1)
        if not _NAME.match(name) or not _ALIAS.match(alias):
            raise ModelRefNotFound(f"no model {ref!r}: expected NAME@ALIAS")
        return ModelRef(name=name, alias=alias)
    if ":" in ref:
        name, version = ref.rsplit(":", 1)
        if not _NAME.match(name) or not _VERSION.match(version):
            raise ModelRefNotFound(f"no model {ref!r}: expected NAME:VERSION")
        return ModelRef(name=name, version=int(version))
    return ModelRef(model_id=ref)


def resolve_model_ref(session: Session, ref: str, *, tenant: str, scope: str | None) -> Model:
    """The model `ref` names. Registry names are looked up in `tenant`'s registry; a bare id
    is any model visible in `scope` (None: every tenant). Raises ModelRefNotFound."""
    parsed = parse_model_ref(ref)
    if parsed.model_id is not None:
        model = session.get(Model, parsed.model_id)
        if model is None or (scope is not None and model.tenant != scope):
            raise ModelRefNotFound(f"no model {ref!r}")
        return model
    if parsed.name is None:  # parse_model_ref gives an id or a name
        raise ModelRefNotFound(f"no model {ref!r}")
    registered = get_registered(session, tenant, parsed.name)
    if registered is None:
        raise ModelRefNotFound(f"no registered model {parsed.name!r}")
    version = parsed.version
    if parsed.alias is not None:
        version = session.scalar(
            select(ModelAlias.version).where(
                ModelAlias.registered_model_id == registered.id, ModelAlias.alias == parsed.alias
            )
        )
        if version is None:
            raise ModelRefNotFound(f"{parsed.name!r} has no alias {parsed.alias!r}")
    model = session.scalar(
        select(Model)
        .join(ModelVersion, ModelVersion.model_id == Model.id)
        .where(ModelVersion.registered_model_id == registered.id, ModelVersion.version == version)
    )
    if model is None:
        raise ModelRefNotFound(f"{parsed.name!r} has no version {version}")
    return model


def fine_tuning_parent(session: Session, ref: str, tenant: str) -> tuple[Model, dict[str, Any]]:
    """The model `ref` names among `tenant`'s own (fine-tuning never starts from another
    tenant's model) and the spec it was trained with. Raises ModelRefNotFound."""
    model = resolve_model_ref(session, ref, tenant=tenant, scope=tenant)
    job = session.get(Job, model.job_id)
    return model, dict(job.spec or {}) if job is not None else {}


def get_registered(session: Session, tenant: str, name: str) -> RegisteredModel | None:
    return session.scalar(
        select(RegisteredModel).where(
            RegisteredModel.tenant == tenant, RegisteredModel.name == name
        )
    )


def list_registered(
    session: Session, tenant: str, *, limit: int, after: str | None = None
) -> tuple[list[RegisteredModel], str | None]:
    """A tenant's names in name order, `limit` at a time; the second value is the next
    page's `after` (None on the last page)."""
    stmt = select(RegisteredModel).where(RegisteredModel.tenant == tenant)
    if after is not None:
        stmt = stmt.where(RegisteredModel.name > after)
    rows = list(session.scalars(stmt.order_by(RegisteredModel.name).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], rows[limit - 1].name


def aliases_of(session: Session, registered_ids: list[int]) -> dict[int, dict[str, int]]:
    """{registered model id: {alias: version}} for the given names."""
    found: dict[int, dict[str, int]] = {rid: {} for rid in registered_ids}
    if not registered_ids:
        return found
    rows = session.execute(
        select(ModelAlias.registered_model_id, ModelAlias.alias, ModelAlias.version)
        .where(ModelAlias.registered_model_id.in_(registered_ids))
        .order_by(ModelAlias.alias)
    )
    for rid, alias, version in rows:
        found[rid][alias] = version
    return found


def versions_of(session: Session, registered: RegisteredModel) -> list[VersionRow]:
    """Every version of a name, oldest first, with its model and the job that trained it."""
    rows = session.execute(
        select(ModelVersion, Model, Job)
        .join(Model, Model.id == ModelVersion.model_id)
        .join(Job, Job.id == Model.job_id)
        .where(ModelVersion.registered_model_id == registered.id)
        .order_by(ModelVersion.version)
    )
    return [
        VersionRow(version=v.version, model=m, job=j, created_at=v.created_at) for v, m, j in rows
    ]


def register_version(session: Session, tenant: str, name: str, model: Model) -> tuple[int, bool]:
    """Register `model` as the next version of `name` (created on first use). Returns the
    version and whether it is new: a model already registered under `name` keeps its version.
    A new version of a model logged to MLflow is queued for MLflow's registry too.
    The name's row is locked (updated) before its counter is read, so concurrent
    registrations wait for each other and never get the same number. The caller commits."""
    now = database_now(session)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(RegisteredModel)
        .values(tenant=tenant, name=name, tags={}, latest_version=0, created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["tenant", "name"])
    )
    registered = session.execute(  # takes the row lock: concurrent registrations queue here
        update(RegisteredModel)
        .where(RegisteredModel.tenant == tenant, RegisteredModel.name == name)
        .values(updated_at=now)
        .returning(RegisteredModel.id, RegisteredModel.latest_version)
        .execution_options(synchronize_session=False)
    ).one()
    existing = session.scalar(
        select(ModelVersion.version).where(
            ModelVersion.registered_model_id == registered.id, ModelVersion.model_id == model.id
        )
    )
    if existing is not None:
        return existing, False
    version = registered.latest_version + 1
    session.execute(
        update(RegisteredModel)
        .where(RegisteredModel.id == registered.id)
        .values(latest_version=version)
        .execution_options(synchronize_session=False)
    )
    session.add(
        ModelVersion(
            registered_model_id=registered.id, version=version, model_id=model.id, created_at=now
        )
    )
    session.flush()
    queue_mirror(session, registered.id, version, model)  # to MLflow's registry, when tracked
    return version, True


def register_trained_model(session: Session, job: Job, model: Model) -> None:
    """A train job's `register_as`: register its model in the transaction that succeeds it."""
    if job.register_as:
        register_version(session, job.tenant, job.register_as, model)


def set_alias(session: Session, registered: RegisteredModel, alias: str, version: int) -> bool:
    """Point `alias` at `version` (moving it if it exists); False when there is no such
    version. The version's row is share-locked first, so a concurrent delete of it either
    waits for this alias (and then refuses, 409) or has removed it (then this is False).
    The caller commits."""
    if _locked_version(session, registered, version, exclusive=False) is None:
        return False
    now = database_now(session)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(ModelAlias).values(
        registered_model_id=registered.id, alias=alias, version=version, updated_at=now
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["registered_model_id", "alias"],
            set_={"version": stmt.excluded.version, "updated_at": stmt.excluded.updated_at},
        )
    )
    registered.updated_at = now
    return True


def _delete_one(session: Session, registered: RegisteredModel, statement: Delete) -> bool:
    """Run a DELETE of one row of the name's (an alias, a version); whether it removed one.
    The name's `updated_at` records the change."""
    if changed_rows(session, statement) != 1:
        return False
    registered.updated_at = database_now(session)
    return True


def delete_alias(session: Session, registered: RegisteredModel, alias: str) -> bool:
    """Remove an alias; False when it did not exist. The caller commits."""
    return _delete_one(
        session,
        registered,
        delete(ModelAlias).where(
            ModelAlias.registered_model_id == registered.id, ModelAlias.alias == alias
        ),
    )


def _locked_version(
    session: Session, registered: RegisteredModel, version: int, *, exclusive: bool
) -> int | None:
    """The version's number, row-locked on PostgreSQL (FOR UPDATE to delete it, FOR SHARE to
    point an alias at it); None when there is no such version. SQLite serialises writers."""
    stmt = select(ModelVersion.version).where(
        ModelVersion.registered_model_id == registered.id, ModelVersion.version == version
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(read=not exclusive)
    return session.scalar(stmt)


class VersionInUse(DomainError):
    """Aliases still point at the version (listed in `aliases`): 409 until they move."""

    status_code = 409

    def __init__(self, name: str, version: int, aliases: list[str]) -> None:
        super().__init__(
            f"{name!r} version {version} is what {', '.join(aliases)} point(s) at: "
            "move or delete those aliases first"
        )
        self.aliases = aliases


def delete_version(session: Session, registered: RegisteredModel, version: int) -> bool:
    """Remove `version` from the name (the trained model itself stays, by its id); False when
    there is no such version, VersionInUse while aliases point at it. Its number is never
    handed out again. The version's row is locked before the aliases are read, so an alias
    set concurrently is either seen here (VersionInUse) or waits and then finds no version:
    the delete never removes an alias by cascade. The caller commits."""
    if _locked_version(session, registered, version, exclusive=True) is None:
        return False
    pointing = list(
        session.scalars(
            select(ModelAlias.alias)
            .where(ModelAlias.registered_model_id == registered.id, ModelAlias.version == version)
            .order_by(ModelAlias.alias)
        )
    )
    if pointing:
        raise VersionInUse(registered.name, version, pointing)
    return _delete_one(
        session,
        registered,
        delete(ModelVersion).where(
            ModelVersion.registered_model_id == registered.id, ModelVersion.version == version
        ),
    )
