"""/v1/webhooks: per-tenant endpoints that hear when jobs and sweeps end, signed by the
Standard Webhooks specification; delivered from an outbox by the workers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, Response, status

from tass.api.auth import PrincipalDep
from tass.api.deps import SessionDep, SettingsDep
from tass.api.errors import found
from tass.api.pagination import PageLimit, page_limit
from tass.api.presenters import from_row
from tass.api.strict_json import StrictJSONRoute
from tass.api.webhook_schemas import (
    DeliveryOut,
    DeliveryPage,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookOut,
)
from tass.core import webhooks as webhook_store
from tass.core.apikeys import Principal
from tass.core.db import Session
from tass.core.models import Webhook
from tass.core.netguard import (
    bounded,
    check_url,
    parse_networks,
    system_resolver,
)

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], route_class=StrictJSONRoute)


def webhook_out(webhook: Webhook) -> WebhookOut:
    return from_row(WebhookOut, webhook)


def require_webhook(session: Session, webhook_id: str, principal: Principal) -> Webhook:
    """The caller's webhook; another tenant's is reported as missing (404)."""
    webhook = webhook_store.get_webhook(session, webhook_id, principal.scope)
    return found(webhook, "webhook", webhook_id)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated)
def create_webhook(
    body: Annotated[WebhookCreate, Body()],
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    principal: PrincipalDep,
) -> WebhookCreated:
    """Register an endpoint. The URL's host is resolved (never contacted) and refused with 422
    when it reaches a loopback, private, link-local or metadata address; a name that does not
    resolve within TASS_WEBHOOK_RESOLVE_TIMEOUT_SECONDS gets 503 with Retry-After; past
    TASS_WEBHOOK_MAX_PER_TENANT webhooks, 409. The signing secret is in this answer only."""
    # resolved before the first query, so a slow lookup holds no database connection
    resolver = getattr(request.app.state, "webhook_resolver", system_resolver)
    lookup = bounded(resolver, settings.webhook_resolve_timeout_seconds)
    # AddressRefused is a 422 naming `url`, LookupTimedOut a 503 with Retry-After
    check_url(body.url, parse_networks(settings.webhook_allow_networks), lookup)
    count = webhook_store.count_webhooks(session, principal.tenant)
    if count >= settings.webhook_max_per_tenant:
        raise HTTPException(
            409,
            detail=f"this tenant already has {count} webhooks, the most allowed "
            f"(TASS_WEBHOOK_MAX_PER_TENANT={settings.webhook_max_per_tenant}); delete one first",
        )
    webhook = webhook_store.create_webhook(
        session,
        tenant=principal.tenant,
        url=body.url,
        events=list(dict.fromkeys(body.events)),
        description=body.description,
    )
    response.headers["Location"] = f"/v1/webhooks/{webhook.id}"
    return WebhookCreated(**webhook_out(webhook).model_dump(), secret=webhook.secret)


@router.get("", response_model=WebhookList)
def list_webhooks(
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Depends(page_limit(200))],
) -> WebhookList:
    """The caller's webhooks, oldest first (secrets are never shown again)."""
    rows = webhook_store.list_webhooks(session, principal.scope, limit)
    return WebhookList(items=[webhook_out(w) for w in rows])


@router.get("/{webhook_id}", response_model=WebhookOut)
def get_webhook(webhook_id: str, session: SessionDep, principal: PrincipalDep) -> WebhookOut:
    return webhook_out(require_webhook(session, webhook_id, principal))


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_webhook(webhook_id: str, session: SessionDep, principal: PrincipalDep) -> Response:
    """Delete the webhook; its undelivered events and its delivery log go with it."""
    webhook_store.delete_webhook(session, require_webhook(session, webhook_id, principal))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryPage)
def list_deliveries(
    webhook_id: str,
    session: SessionDep,
    principal: PrincipalDep,
    limit: PageLimit,
    cursor: Annotated[str | None, Query(max_length=18, pattern=r"^[0-9]+$")] = None,
) -> DeliveryPage:
    """Every delivery attempt, newest first: time, status code, latency and error."""
    require_webhook(session, webhook_id, principal)
    rows = webhook_store.list_deliveries(
        session, webhook_id, limit, before=int(cursor) if cursor else None
    )
    next_cursor = str(rows[-1].id) if len(rows) == limit else None
    return DeliveryPage(items=[from_row(DeliveryOut, row) for row in rows], next_cursor=next_cursor)
