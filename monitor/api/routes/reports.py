"""HTTP route of the reports (auditors and admins).

GET /api/v1/reports/audit?as_of=&since=&format=json|csv|html&what=&project=   the stack audit report
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from monitor.api.auth import permit
from monitor.api.deps import RuntimeDep, parse_time
from monitor.auth.model import Permission
from monitor.reports.audit_loader import audit_report
from monitor.reports.render_csv import render_csv
from monitor.reports.render_html import render_html
from monitor.reports.render_json import render_json_bytes

router = APIRouter(prefix="/api/v1", tags=["reports"])

MEDIA_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8", "html": "text/html; charset=utf-8"}


@router.get(
    "/reports/audit",
    summary="Stack audit report: packages, findings with SLA status, compliance, evidence, change log",
    dependencies=[permit(Permission.READ_REPORTS)],
    response_class=Response,
    responses={
        200: {"content": {m.split(";")[0]: {} for m in MEDIA_TYPES.values()}},
        404: {"description": "unknown project"},
        422: {"description": "as_of before any history, in the future, or malformed"},
    },
)
def audit(
    runtime: RuntimeDep,
    as_of: Annotated[str | None, Query(description="RFC 3339 time, date (00:00 UTC) or Unix seconds")] = None,
    since: Annotated[str | None, Query(description="start of the period (default: 90 days before as_of)")] = None,
    fmt: Annotated[Literal["json", "csv", "html"], Query(alias="format")] = "json",
    what: Annotated[
        Literal["findings", "packages", "compliance", "changes"], Query(description="CSV only: which table")
    ] = "findings",
    project: Annotated[list[str] | None, Query(description="only these projects (repeat)")] = None,
) -> Response:
    doc = audit_report(
        runtime.store,
        runtime.config,
        runtime.clock.now(),
        as_of=parse_time(as_of, "as_of") if as_of else None,
        since=parse_time(since, "since") if since else None,
        projects=project or None,
    )
    stamp = doc["as_of"][:10].replace("-", "")
    if fmt == "csv":
        body = render_csv(doc, what)
        disposition = f'attachment; filename="mlmon-audit-{what}-{stamp}.csv"'
        return Response(body, media_type=MEDIA_TYPES["csv"], headers={"Content-Disposition": disposition})
    if fmt == "html":
        return Response(render_html(doc), media_type=MEDIA_TYPES["html"])
    return Response(render_json_bytes(doc), media_type=MEDIA_TYPES["json"])
