"""The FastAPI application, built around a Runtime."""

from __future__ import annotations

from fastapi import FastAPI

from monitor import __version__
from monitor.api import errors, openapi
from monitor.api.auth import permit
from monitor.api.failures import CrashBarrier
from monitor.api.middleware import RequestMetrics
from monitor.api.routes import admin, alerts, events, health, projects, samples, series, settings
from monitor.api.routes import auth as auth_api
from monitor.api.routes import quality as quality_api
from monitor.api.routes import reports as reports_api
from monitor.api.routes import spend as spend_api
from monitor.api.routes import stack as stack_api
from monitor.auth.model import Permission
from monitor.runtime import Runtime
from monitor.web import routes as web_routes

DESCRIPTION = """
mlmon watches many ML projects and answers, per project: is the model still accurate, what does
it cost against its budget, and is its PyTorch stack patched and current.
"""


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(title="mlmon", version=__version__, description=DESCRIPTION, docs_url="/docs")
    app.state.runtime = runtime
    errors.install(app)
    app.include_router(health.router)
    app.include_router(auth_api.router)
    app.include_router(reports_api.router)  # auditors and admins only (its own permission)
    # Every other route reads at least; routes that change things ask for more themselves.
    for module in (samples, series, projects, settings, events, alerts, admin, stack_api, quality_api, spend_api):
        app.include_router(module.router, dependencies=[permit(Permission.READ)])
    web_routes.install(app)  # the server-rendered UI: /, /projects/{id}, /alerts, /audit, /login
    openapi.install(app)
    app.add_middleware(CrashBarrier)
    app.add_middleware(RequestMetrics, telemetry=runtime.telemetry)
    return app
