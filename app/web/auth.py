"""Who is asking: session cookie for pages, bearer token for the JSON API, and the access policy.

Every route declares who may reach it with `opt=access(...)`; the app-wide guard refuses any
route that declares nothing, so a forgotten declaration fails closed (and a test lists them).
"""

from __future__ import annotations

import ipaddress
from datetime import datetime
from typing import Any

from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.authentication import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.response import Response
from litestar.types import Message, Scope

from app.domain.access import Principal, Role
from app.services.auth import resolve_principal
from app.web.context import AppContext
from app.web.tokens import issue_token, read_token

API_PREFIX = "/api/"
PUBLIC = "public"  # anyone, signed in or not
LOCAL = "local"  # only from this machine (after the trusted-proxy fix): /metrics


def access(policy: str | frozenset[Role]) -> dict[str, Any]:
    """The `opt` of a route: who may reach it."""
    return {"access": policy}


def session_cookie_name(ctx: AppContext) -> str:
    # __Host- cookies must be Secure, Path=/ and host-only: the browser then refuses any other origin's copy.
    return "__Host-sd_session" if ctx.settings.security.secure_cookies else "sd_session"


class SessionAuthMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        ctx: AppContext = connection.app.state.ctx
        api = connection.scope["path"].startswith(API_PREFIX)
        if api:
            header = connection.headers.get("authorization", "")
            scheme, _, token = header.partition(" ")
            token = token.strip() if scheme.lower() == "bearer" else ""
        else:
            token = connection.cookies.get(session_cookie_name(ctx), "")
        if not token:
            return AuthenticationResult(user=None, auth=None)
        kind = "api" if api else "browser"
        claims = read_token(ctx.settings.security.secret_key, token, kind)
        if claims is None:
            return AuthenticationResult(user=None, auth=None)
        now = ctx.now()
        found = await resolve_principal(
            ctx.db, claims.session_id, kind=kind, now=now, policy=ctx.login_policy.sessions
        )
        if found is None:
            return AuthenticationResult(user=None, auth=None)
        principal, session_ends = found
        if not api and (claims.expires_at - now) < ctx.login_policy.sessions.token / 2:
            connection.scope.setdefault("state", {})["renew_session_until"] = session_ends
        return AuthenticationResult(user=principal, auth=claims)


def session_cookie(ctx: AppContext, principal: Principal, session_ends: datetime, now: datetime) -> Cookie:
    """A fresh token for `principal`'s session, never outliving the session itself."""
    expires = min(now + ctx.login_policy.sessions.token, session_ends)
    token = issue_token(ctx.settings.security.secret_key, principal.session_id, "browser", expires, now)
    return Cookie(
        key=session_cookie_name(ctx),
        value=token,
        path="/",
        secure=ctx.settings.security.secure_cookies,
        httponly=True,
        samesite="strict",
        max_age=int((expires - now).total_seconds()),
    )


def set_session_cookie(
    response: Response[Any], ctx: AppContext, principal: Principal, session_ends: datetime, now: datetime
) -> None:
    response.set_cookie(session_cookie(ctx, principal, session_ends, now))


def clear_session_cookie(response: Response[Any], ctx: AppContext) -> None:
    response.delete_cookie(session_cookie_name(ctx), path="/")


async def renew_session(message: Message, scope: Scope) -> None:
    """before_send hook: slide the token's short lifetime forward while the session is in use."""
    if message["type"] != "http.response.start":
        return
    session_ends = scope.get("state", {}).get("renew_session_until")
    principal = scope.get("user")
    if session_ends is None or not isinstance(principal, Principal):
        return
    headers = MutableScopeHeaders.from_message(message)
    if any(
        v.startswith(session_cookie_name(scope["app"].state.ctx) + "=")
        for v in headers.getall("set-cookie", [])
    ):
        return  # the handler already set or cleared the cookie (login, logout)
    ctx: AppContext = scope["app"].state.ctx
    name, value = session_cookie(ctx, principal, session_ends, ctx.now()).to_encoded_header()
    headers.add(name.decode("latin-1"), value.decode("latin-1"))


def is_local(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    client = connection.client.host if connection.client else ""
    try:
        return ipaddress.ip_address(client).is_loopback
    except ValueError:
        return client in {"testclient", "localhost"}


async def access_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """App-wide guard: apply the route's declared access policy; deny routes that declare none.

    Async on purpose: Litestar runs a plain function guard in a worker thread, on every request.
    """
    policy = handler.opt.get("access")
    if policy == PUBLIC:
        return
    if policy == LOCAL:
        if not is_local(connection):
            raise PermissionDeniedException("Only reachable from the server itself.")
        return
    if not isinstance(policy, frozenset):
        raise PermissionDeniedException("This route declares no access policy.")
    principal = connection.scope.get("user")
    if not isinstance(principal, Principal):
        raise NotAuthorizedException("Sign in first.")
    if not principal.may(policy):
        raise PermissionDeniedException("Your role does not allow this.")
