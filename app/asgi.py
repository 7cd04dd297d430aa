"""The web application factory. Nothing happens at import time; granian calls create_app()."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.config.allowed_hosts import AllowedHostsConfig
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import CacheControlHeader
from litestar.di import Provide
from litestar.logging.config import LoggingConfig
from litestar.middleware.base import DefineMiddleware
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.htmx import HTMXConfig, HTMXPlugin
from litestar.plugins.prometheus import PrometheusConfig
from litestar.static_files import create_static_files_router

from app.db.crypto import configure_keys
from app.db.session import Database, sqlalchemy_config
from app.db.urls import DatabaseUrls
from app.routes.admin_users import AdminUsersController
from app.routes.api_dispatch import ApiDispatchRunsController
from app.routes.api_orders import ApiDestinationsController, ApiOrdersController
from app.routes.api_picking import ApiPickListsController, ApiPickTasksController, ApiShipmentsController
from app.routes.api_stock import (
    ApiLocationsController,
    ApiMovementsController,
    ApiProductsController,
    ApiStockController,
)
from app.routes.auth import ApiAuthController, AuthController
from app.routes.boards import BoardController, BoardPanels, LiveController
from app.routes.destinations import DestinationsController
from app.routes.dispatch import DispatchController
from app.routes.health import HealthController, MetricsController
from app.routes.home import HomeController
from app.routes.imports import ImportsController
from app.routes.operations import OperationsController
from app.routes.ops import OpsController
from app.routes.orders import OrdersController, OrdersHomeController
from app.routes.picking import PickingController
from app.routes.shipments import ShipmentsController
from app.routes.stock import StockController
from app.settings import Settings, SettingsError, load_settings
from app.web import i18n
from app.web.auth import API_PREFIX, PUBLIC, SessionAuthMiddleware, access, access_guard, renew_session
from app.web.context import AppContext, provide_context
from app.web.errors import EXCEPTION_HANDLERS
from app.web.live import LiveHub
from app.web.middleware import LocaleMiddleware, SecurityHeadersMiddleware
from app.web.templating import STATIC_DIR, STATIC_PATH, template_config


def create_app(settings: Settings | None = None, database_url: str | None = None) -> Litestar:
    """Build the application. The database URL comes from the argument or DATABASE_URL."""
    settings = settings or load_settings()
    url = database_url or settings.database.url or os.environ.get("DATABASE_URL", "")
    if not url:
        raise SettingsError("DATABASE_URL is not set: start the app with `dispatch serve` or `make run`")
    urls = DatabaseUrls.parse(url)
    i18n.load_catalogs()
    configure_keys(settings.security.data_key, settings.security.data_key_previous)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        db = Database(sqlalchemy_config(urls, settings.database, application_name="dispatch-web"))
        live = LiveHub(
            urls.libpq, check_every=settings.web.live_watchdog_seconds, on_lost=db.forget_connections
        )
        app.state.ctx = AppContext.build(settings, urls, db, live)
        engine = app.template_engine.engine  # type: ignore[union-attr]
        app.state.board_panels = BoardPanels(db, engine, live, app.route_reverse)
        await live.start()
        try:
            yield
        finally:
            await live.stop()
            await db.dispose()

    secure = settings.security.secure_cookies
    csrf = CSRFConfig(
        secret=settings.security.secret_key,
        cookie_name="__Host-csrftoken" if secure else "csrftoken",
        cookie_secure=secure,
        cookie_httponly=False,  # htmx reads nothing from it; the token travels in the page (hx-headers)
        cookie_samesite="strict",
        header_name="x-csrftoken",
        # The JSON API authenticates with bearer tokens only (never the cookie), so it needs no CSRF token.
        exclude=[f"^{API_PREFIX}"],
    )
    prometheus = PrometheusConfig(
        app_name="dispatch",
        prefix="dispatch",
        group_path=True,
        # A live stream's duration is how long a board stayed open, not a response time.
        exclude=["/metrics", "/static", "/health", r"^/sites/[^/]+/(board/events|live)$"],
        exclude_unhandled_paths=True,
    )
    static = create_static_files_router(
        path=STATIC_PATH,
        directories=[STATIC_DIR],
        name="static",
        opt=access(PUBLIC),
        # Every page names its files with their content's digest (templating.static_url).
        cache_control=CacheControlHeader(public=True, max_age=365 * 24 * 3600, immutable=True),
        send_as_attachment=False,
    )
    openapi_router = Router(path="/api/schema", route_handlers=[], opt=access(PUBLIC))

    return Litestar(
        route_handlers=[
            AuthController,
            ApiAuthController,
            ApiProductsController,
            ApiLocationsController,
            ApiStockController,
            ApiMovementsController,
            ApiPickListsController,
            ApiPickTasksController,
            ApiShipmentsController,
            ApiDestinationsController,
            ApiOrdersController,
            HomeController,
            BoardController,
            LiveController,
            StockController,
            OrdersController,
            OrdersHomeController,
            DestinationsController,
            DispatchController,
            ApiDispatchRunsController,
            OperationsController,
            PickingController,
            ShipmentsController,
            AdminUsersController,
            ImportsController,
            OpsController,
            HealthController,
            MetricsController,
            static,
        ],
        lifespan=[lifespan],
        dependencies={"ctx": Provide(provide_context, sync_to_thread=False)},
        guards=[access_guard],
        before_send=[renew_session],
        middleware=[
            SecurityHeadersMiddleware(hsts=settings.production),
            prometheus.middleware,
            # Static files and health checks need nobody's identity: skip the session lookup for them.
            DefineMiddleware(SessionAuthMiddleware, exclude=["^/static/", "^/health/"]),
            LocaleMiddleware(settings.web.default_locale),
        ],
        csrf_config=csrf,
        allowed_hosts=AllowedHostsConfig(allowed_hosts=list(settings.web.allowed_hosts)),
        plugins=[HTMXPlugin(HTMXConfig(set_request_class_globally=True))],
        template_config=template_config(),
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=OpenAPIConfig(
            title="Stock Dispatch API",
            version="1",
            openapi_router=openapi_router,
            render_plugins=[JsonRenderPlugin()],
            use_handler_docstrings=True,
            components=Components(
                security_schemes={
                    "bearer": SecurityScheme(
                        type="http",
                        scheme="bearer",
                        bearer_format="JWT",
                        description="A token from POST /api/v1/auth/token",
                    )
                }
            ),
            security=[{"bearer": []}],
        ),
        logging_config=LoggingConfig(
            root={"level": settings.ops.log_level, "handlers": ["queue_listener"]},
            # Refusals are answers, not faults; unexpected errors are logged by the 500 handler itself.
            log_exceptions="never",
        ),
        request_max_body_size=20_000_000,
        debug=False,
    )


logging.getLogger("app").addHandler(logging.NullHandler())


def create_served_app() -> object:
    """What granian serves: the app behind the trusted-proxy fix for X-Forwarded-For/-Proto (IIS)."""
    from granian.utils.proxies import wrap_asgi_with_proxy_headers

    settings = load_settings()
    return wrap_asgi_with_proxy_headers(
        create_app(settings), trusted_hosts=list(settings.web.trusted_proxies)
    )
