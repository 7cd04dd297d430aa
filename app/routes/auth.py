"""Signing in and out: the login page, the API token endpoint, and the language switch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery, JSONBody
from litestar.plugins.htmx import ClientRedirect
from litestar.response import Redirect, Template

from app.domain.access import EVERYONE
from app.routes.common import client_ip, principal_of, safe_next
from app.services import auth as auth_service
from app.services import users as user_service
from app.services.errors import LoginRefused, TooManyAttempts
from app.web.auth import PUBLIC, access, clear_session_cookie, set_session_cookie
from app.web.context import AppContext, Ctx
from app.web.i18n import LANG_COOKIE, LOCALES
from app.web.i18n import gettext as _
from app.web.tokens import issue_token


@dataclass
class LoginForm:
    username: str = ""
    password: str = ""
    next: str = "/"


@dataclass
class TokenRequest:
    username: str
    password: str


@dataclass
class TokenResponse:
    access_token: str
    token_type: str
    expires_in: int


async def _log_in(
    request: Request[Any, Any, Any], ctx: AppContext, username: str, password: str, kind: str, now: datetime
) -> auth_service.Login:
    return await auth_service.log_in(
        ctx.db,
        username=username,
        password=password,
        kind=kind,
        ip=client_ip(request),
        user_agent=request.headers.get("user-agent"),
        now=now,
        policy=ctx.login_policy,
    )


class AuthController(Controller):
    @get("/login", name="auth:login", opt=access(PUBLIC))
    async def login_page(self, request: Request[Any, Any, Any], next: FromQuery[str] = "/") -> Template:
        return Template("auth/login.html", context={"next": safe_next(next), "error": None, "username": ""})

    @post("/login", name="auth:login-submit", opt=access(PUBLIC), status_code=303)
    async def login(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        now = ctx.now()
        try:
            login = await _log_in(request, ctx, data.username, data.password, "browser", now)
        except (LoginRefused, TooManyAttempts) as refused:
            return Template(
                "auth/login.html",
                status_code=refused.status,
                context={
                    "next": safe_next(data.next),
                    "error": _(refused.message, **refused.facts),
                    "username": data.username,
                },
            )
        response: Response[Any] = Redirect(safe_next(data.next), status_code=303)
        set_session_cookie(response, ctx, login.principal, login.session_expires_at, now)
        return response

    @post("/logout", name="auth:logout", opt=access(EVERYONE), status_code=303)
    async def logout(self, request: Request[Any, Any, Any], ctx: Ctx) -> Response[Any]:
        await auth_service.log_out(ctx.db, principal_of(request), ip=client_ip(request), now=ctx.now())
        response: Response[Any] = (
            ClientRedirect("/login")
            if request.headers.get("hx-request")
            else Redirect("/login", status_code=303)
        )
        clear_session_cookie(response, ctx)
        return response

    @post("/language", name="auth:language", opt=access(PUBLIC), status_code=303)
    async def switch_language(
        self,
        request: Request[Any, Any, Any],
        ctx: Ctx,
        data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        """Switch the language; a signed-in user's choice is remembered on their account."""
        locale = data.get("locale", "")
        locale = locale if locale in LOCALES else ctx.settings.web.default_locale
        principal = request.scope.get("user")
        if principal is not None:
            await user_service.set_locale(ctx.db, principal.user_id, locale)
        response: Response[Any] = Redirect(safe_next(data.get("next")), status_code=303)
        response.set_cookie(
            LANG_COOKIE,
            locale,
            path="/",
            max_age=365 * 86400,
            samesite="lax",
            secure=ctx.settings.security.secure_cookies,
            httponly=True,
        )
        return response


class ApiAuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]

    @post("/token", name="api:auth-token", opt=access(PUBLIC), status_code=200)
    async def token(
        self, request: Request[Any, Any, Any], ctx: Ctx, data: JSONBody[TokenRequest]
    ) -> TokenResponse:
        """Exchange a username and password for a bearer token (backed by a revocable session)."""
        now = ctx.now()
        login = await _log_in(request, ctx, data.username, data.password, "api", now)
        token = issue_token(
            ctx.settings.security.secret_key, login.principal.session_id, "api", login.session_expires_at, now
        )
        return TokenResponse(token, "bearer", int((login.session_expires_at - now).total_seconds()))
