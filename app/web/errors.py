"""Errors as people and programs need them: a page for a person, RFC 9457 problem details for the API."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.plugins.htmx import ClientRedirect
from litestar.response import Redirect, Template

from app.db.session import Unstorable, unstorable_value
from app.services.errors import Refused
from app.web.auth import API_PREFIX
from app.web.i18n import N_
from app.web.i18n import gettext as _

log = logging.getLogger("app.errors")
PROBLEM = "application/problem+json"

_TITLES = {
    400: N_("The request is not valid."),
    401: N_("Sign in first."),
    403: N_("You do not have access to this page."),
    404: N_("This page does not exist."),
    405: N_("This action is not allowed here."),
    409: N_("The request conflicts with the current state."),
    413: N_("The file is too large."),
    422: N_("Some fields need correcting."),
    429: N_("Too many attempts. Wait a moment, then try again."),
    500: N_("Something went wrong on our side. The error has been recorded."),
}


def _wants_problem(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.startswith(API_PREFIX) or request.url.path.startswith("/health")


def problem(request: Request[Any, Any, Any], status: int, detail: str, **extra: Any) -> Response[Any]:
    body = {
        "type": "about:blank",
        "title": _TITLES.get(status, _TITLES[500]),
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        **extra,
    }
    return Response(body, status_code=status, media_type=PROBLEM)


def error_page(request: Request[Any, Any, Any], status: int, message: str) -> Response[Any]:
    if _wants_problem(request):
        return problem(request, status, message)
    template = "errors/_message.html" if getattr(request, "htmx", None) else "errors/error.html"
    return Template(
        template_name=template,
        status_code=status,
        context={"status": status, "title": _(_TITLES.get(status, _TITLES[500])), "message": message},
    )


def on_not_authorized(request: Request[Any, Any, Any], exc: NotAuthorizedException) -> Response[Any]:
    if _wants_problem(request):
        return problem(request, 401, _("Sign in first."))
    target = "/login?next=" + quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    if getattr(request, "htmx", None):
        return ClientRedirect(target)  # a full-page redirect inside an htmx swap would nest the login page
    return Redirect(target, status_code=303)


def on_permission_denied(request: Request[Any, Any, Any], exc: PermissionDeniedException) -> Response[Any]:
    detail = exc.detail or ""
    if "CSRF" in detail:
        message = _("This form has expired. Reload the page and try again.")
    else:
        message = _(_TITLES[403])
    return error_page(request, 403, message)


def on_not_found(request: Request[Any, Any, Any], exc: NotFoundException) -> Response[Any]:
    return error_page(request, 404, _(_TITLES[404]))


def on_validation(request: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    if _wants_problem(request):
        return problem(request, 400, _(_TITLES[400]), errors=exc.extra or [])
    return error_page(request, 400, _(_TITLES[400]))


def on_refused(request: Request[Any, Any, Any], exc: Refused) -> Response[Any]:
    message = _(exc.message, **exc.facts)
    if _wants_problem(request):
        extra = {k: v for k, v in exc.facts.items() if isinstance(v, str | int | float)}
        return problem(request, exc.status, message, **extra)
    return error_page(request, exc.status, message)


def on_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    headers = exc.headers or {}
    response = error_page(request, status, _(_TITLES.get(status, _TITLES[500])))
    response.headers.update(headers)
    return response


_UNSTORABLE_MESSAGES = {
    Unstorable.TEXT: N_(
        "A value contains a character that cannot be stored (a null character, for instance). "
        "Remove it and try again."
    ),
    Unstorable.NUMBER: N_("A number is too large or too small. Nothing was changed."),
}


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if (unstorable := unstorable_value(exc)) is not None:
        # What the request carried, refused by the database as a whole transaction: a bad request.
        log.info("refused an unstorable %s on %s %s", unstorable.value, request.method, request.url.path)
        return error_page(request, 400, _(_UNSTORABLE_MESSAGES[unstorable]))
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_page(request, 500, _(_TITLES[500]))


EXCEPTION_HANDLERS: dict[Any, Any] = {
    NotAuthorizedException: on_not_authorized,
    PermissionDeniedException: on_permission_denied,
    NotFoundException: on_not_found,
    ValidationException: on_validation,
    Refused: on_refused,
    HTTPException: on_http_exception,
    Exception: on_unexpected,
}
