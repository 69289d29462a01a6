"""/v1/tenants/{tenant}: a tenant's scheduling settings (fair-share weight, highest priority
class, GPU quota per pool). Admins set them; a tenant may read its own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Path

from tass.api.auth import PrincipalDep
from tass.api.deps import SessionDep
from tass.api.errors import missing
from tass.api.scheduling_schemas import TenantSettingsIn, TenantSettingsOut
from tass.api.strict_json import StrictJSONRoute
from tass.core.apikeys import TENANT_PATTERN
from tass.core.scheduler_store import save_tenant, tenant_settings
from tass.core.scheduling import Priority, Tenant

router = APIRouter(prefix="/v1/tenants", tags=["scheduling"], route_class=StrictJSONRoute)

TenantName = Annotated[str, Path(pattern=TENANT_PATTERN.pattern, max_length=64)]


def tenant_out(tenant: Tenant) -> TenantSettingsOut:
    return TenantSettingsOut(
        name=tenant.name,
        weight=tenant.weight,
        max_priority=tenant.max_priority.label,
        gpu_quota=dict(tenant.gpu_quota),
    )


@router.get("/{tenant}", response_model=TenantSettingsOut)
def get_tenant(
    tenant: TenantName, session: SessionDep, principal: PrincipalDep
) -> TenantSettingsOut:
    """The tenant's settings (the defaults where an admin set none): an admin's, or the
    tenant's own (another tenant's is reported missing)."""
    if not principal.sees(tenant):
        raise missing("tenant", tenant)
    return tenant_out(tenant_settings(session, tenant))


@router.put("/{tenant}", response_model=TenantSettingsOut)
def put_tenant(
    tenant: TenantName,
    body: Annotated[TenantSettingsIn, Body()],
    session: SessionDep,
    principal: PrincipalDep,
) -> TenantSettingsOut:
    """Admin only: set the tenant's weight, highest class or GPU quota per pool (fields left
    out keep their value); the scheduler applies them at its next cycle."""
    if not principal.is_admin:
        raise HTTPException(403, detail="this needs an admin API key")
    saved = save_tenant(
        session,
        tenant,
        weight=body.weight,
        max_priority=Priority.parse(body.max_priority) if body.max_priority else None,
        gpu_quota=body.gpu_quota,
    )
    return tenant_out(saved)
