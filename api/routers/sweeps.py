"""/v1/sweeps: hyperparameter sweeps whose trials are ordinary train jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Response, status

from tass.api.auth import PrincipalDep
from tass.api.deps import SessionDep, SettingsDep
from tass.api.errors import found
from tass.api.fine_tuning import resolved_train_spec
from tass.api.job_datasets import checked_dataset
from tass.api.job_scheduling import checked_scheduling
from tass.api.pagination import CursorQuery, PageLimit
from tass.api.presenters import from_row, resources_out
from tass.api.strict_json import StrictJSONRoute
from tass.api.sweep_schemas import BestOut, SweepCreate, SweepOut, SweepPage, TrialOut
from tass.api.sweep_validation import check_sweep, sweep_config
from tass.core import sweeps as sweep_store
from tass.core.apikeys import Principal
from tass.core.db import Session
from tass.core.job_lifecycle import check_quota
from tass.core.models import Sweep
from tass.core.scheduling import Priority
from tass.core.settings import Settings
from tass.core.sweep_decisions import TrialRecord, best_value

router = APIRouter(prefix="/v1/sweeps", tags=["sweeps"], route_class=StrictJSONRoute)


# The sweep settings SweepOut shows as stored in the sweep's config.
CONFIG_FIELDS = (
    "method",
    "parameters",
    "objective",
    "max_trials",
    "max_parallel",
    "spec",
    "dataset",
)


def trial_out(trial: TrialRecord, goal: str) -> TrialOut:
    return from_row(
        TrialOut,
        trial,
        best_value=best_value([p.value for p in trial.epochs], goal),
        epochs_run=len(trial.epochs),
    )


def sweep_out(session: Session, sweep: Sweep) -> SweepOut:
    config = sweep.config
    goal = config["objective"]["goal"]
    return from_row(
        SweepOut,
        sweep,
        **{key: config[key] for key in CONFIG_FIELDS},
        early_stopping=config.get("early_stopping"),
        priority=Priority(config.get("priority", int(Priority.NORMAL))).label,
        resources=resources_out(config.get("resources")),
        tags=sweep.tags or {},
        trials=[trial_out(t, goal) for t in sweep_store.trial_records(session, sweep)],
        best=BestOut(**sweep.best) if sweep.best else None,
    )


def check_sweep_quota(session: Session, settings: Settings, tenant: str) -> None:
    """Trials count as jobs: a tenant at its quota cannot start a sweep (429, QuotaExceeded)."""
    check_quota(session, tenant, settings.max_active_jobs_per_tenant)


def require_sweep(session: Session, sweep_id: str, principal: Principal) -> Sweep:
    """The caller's sweep; another tenant's sweep is reported as missing (404)."""
    return found(sweep_store.get_sweep(session, sweep_id, principal.scope), "sweep", sweep_id)


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=SweepOut)
def create_sweep(
    body: Annotated[SweepCreate, Body()],
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
) -> SweepOut:
    """Validate the search space, store the sweep with its first trials and commit (the
    scheduler places the trials). Housekeeping starts the rest as slots free up and stops the
    trials the pruner stops."""
    check_sweep(body)
    dataset = checked_dataset(body.dataset, settings, session, principal)
    check_sweep_quota(session, settings, principal.tenant)
    scheduling = checked_scheduling(body, session, principal, settings)
    config = sweep_config(body, dataset, scheduling)
    # every trial fine-tunes the same model: the one spec.init_from names now
    config["spec"] = resolved_train_spec(body.spec, session, principal)
    sweep = sweep_store.create_sweep(
        session,
        tenant=principal.tenant,
        name=body.name,
        config=config,
        tags=body.tags,
    )
    sweep_store.advance_sweep(session, sweep.id, settings)  # its first trials, queued
    response.headers["Location"] = f"/v1/sweeps/{sweep.id}"
    return sweep_out(session, sweep)


@router.get("", response_model=SweepPage)
def list_sweeps(
    session: SessionDep,
    principal: PrincipalDep,
    limit: PageLimit,
    cursor: CursorQuery = None,
) -> SweepPage:
    """Sweeps newest first; follow `next_cursor` for the next page."""
    rows, next_cursor = sweep_store.list_sweeps(
        session, limit=limit, cursor=cursor, scope=principal.scope
    )
    return SweepPage(items=[sweep_out(session, s) for s in rows], next_cursor=next_cursor)


@router.get("/{sweep_id}", response_model=SweepOut)
def get_sweep(sweep_id: str, session: SessionDep, principal: PrincipalDep) -> SweepOut:
    return sweep_out(session, require_sweep(session, sweep_id, principal))


@router.post("/{sweep_id}/cancel", status_code=status.HTTP_202_ACCEPTED, response_model=SweepOut)
def cancel_sweep(sweep_id: str, session: SessionDep, principal: PrincipalDep) -> SweepOut:
    """Cancel the sweep: its queued trials never start, its running ones stop within a batch."""
    sweep = require_sweep(session, sweep_id, principal)
    if not sweep_store.cancel_sweep(session, sweep):
        raise HTTPException(409, detail=f"sweep {sweep_id} is already {sweep.status}")
    return sweep_out(session, sweep)
