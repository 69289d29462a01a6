"""Model references: a model id, `NAME@ALIAS` or `NAME:VERSION`, parsed and resolved by the
one resolver every endpoint uses."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from tass.core.db import make_engine, make_session_factory
from tass.core.models import Job, Model, RegisteredModel
from tass.core.registry import (
    ModelRef,
    ModelRefNotFound,
    get_registered,
    parse_model_ref,
    register_version,
    resolve_model_ref,
    set_alias,
)
from tass.migrations.runner import upgrade


@pytest.mark.parametrize(
    ("ref", "parsed"),
    [
        ("0123abcd", ModelRef(model_id="0123abcd")),
        ("cats@production", ModelRef(name="cats", alias="production")),
        ("cats:12", ModelRef(name="cats", version=12)),
        ("team.cats-v2@a_b", ModelRef(name="team.cats-v2", alias="a_b")),
    ],
)
def test_references_parse_one_way(ref, parsed):
    assert parse_model_ref(ref) == parsed


@pytest.mark.parametrize("ref", ["cats:0", "cats:-1", "cats:x", "cats@", "@prod", ":1", "a@1x"])
def test_malformed_references_name_no_model(ref):
    with pytest.raises(ModelRefNotFound):
        parse_model_ref(ref)


@pytest.fixture
def session(tmp_path) -> Session:
    url = f"sqlite:///{tmp_path / 'refs.db'}"
    upgrade(url)
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        yield session
    engine.dispose()


def trained(session: Session, tenant: str) -> Model:
    job = Job(type="train", tenant=tenant, status="succeeded", queue="train", dataset={})
    session.add(job)
    session.flush()
    model = Model(job_id=job.id, tenant=tenant, metrics={})
    session.add(model)
    session.flush()
    return model


def test_every_kind_of_reference_resolves_within_the_tenant(session):
    v1, v2, other = trained(session, "acme"), trained(session, "acme"), trained(session, "globex")
    assert register_version(session, "acme", "cats", v1) == (1, True)
    assert register_version(session, "acme", "cats", v2) == (2, True)
    assert register_version(session, "acme", "cats", v1) == (1, False)
    assert register_version(session, "globex", "cats", other) == (1, True)
    cats = get_registered(session, "acme", "cats")
    assert isinstance(cats, RegisteredModel) and cats.latest_version == 2
    assert set_alias(session, cats, "prod", 2) and not set_alias(session, cats, "prod", 7)

    def resolve(ref: str, tenant: str = "acme", scope: str | None = "acme") -> str:
        return resolve_model_ref(session, ref, tenant=tenant, scope=scope).id

    assert resolve(v1.id) == v1.id
    assert resolve("cats:1") == v1.id
    assert resolve("cats@prod") == v2.id
    assert resolve("cats:1", tenant="globex", scope="globex") == other.id
    assert resolve(other.id, scope=None) == other.id  # an admin sees every tenant's ids
    set_alias(session, cats, "prod", 1)
    assert resolve("cats@prod") == v1.id
    for missing in (other.id, "cats:3", "cats@staging", "dogs:1"):
        with pytest.raises(ModelRefNotFound):
            resolve(missing)
