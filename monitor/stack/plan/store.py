"""SQL of the remediation plan: the index cache (pages, core metadata) and each project's plan."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from monitor.stack.plan.index_client import CachedPage
from monitor.stack.plan.model import CoreMetadata, Plan
from monitor.stack.plan.tables import stack_index_metadata, stack_index_pages, stack_plans
from monitor.store.db import write_tx


class StoreIndexCache:
    """`IndexCache` in the store, shared by every worker and kept across restarts."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._meta: dict[str, CoreMetadata | None] = {}

    def get_page(self, index_url: str, name: str) -> CachedPage | None:
        t = stack_index_pages.c
        with self.engine.connect() as conn:
            row = conn.execute(select(stack_index_pages).where(t.index_url == index_url, t.name == name)).first()
        if row is None:
            return None
        return CachedPage(row.status, row.fetched_at, row.document, row.last_error, row.failing_since)

    def put_page(self, index_url: str, name: str, page: CachedPage, attempted_at: datetime) -> None:
        t = stack_index_pages.c
        values = {
            "status": page.status,
            "fetched_at": page.fetched_at,
            "document": page.document,
            "last_attempt_at": attempted_at,
            "last_error": page.last_error,
            "failing_since": page.failing_since,
        }
        with write_tx(self.engine) as conn:
            done = conn.execute(
                update(stack_index_pages).where(t.index_url == index_url, t.name == name).values(**values)
            )
            if not done.rowcount:
                conn.execute(insert(stack_index_pages).values(index_url=index_url, name=name, **values))

    def get_metadata(self, url: str) -> CoreMetadata | None | bool:
        if url in self._meta:
            found = self._meta[url]
            return False if found is None else found
        t = stack_index_metadata.c
        with self.engine.connect() as conn:
            row = conn.execute(select(stack_index_metadata).where(t.url == url)).first()
        if row is None:
            return None
        meta = CoreMetadata(tuple(row.requires_dist or ()), row.requires_python) if row.status == "ok" else None
        self._meta[url] = meta
        return False if meta is None else meta

    def put_metadata(self, url: str, meta: CoreMetadata | None, at: datetime) -> None:
        t = stack_index_metadata.c
        values = {
            "status": "ok" if meta is not None else "absent",
            "fetched_at": at,
            "requires_dist": list(meta.requires_dist) if meta else [],
            "requires_python": meta.requires_python if meta else None,
        }
        with write_tx(self.engine) as conn:
            conn.execute(delete(stack_index_metadata).where(t.url == url))
            conn.execute(insert(stack_index_metadata).values(url=url, **values))
        self._meta[url] = meta


class PlanStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def keys(self) -> dict[str, tuple[str, datetime]]:
        t = stack_plans.c
        with self.engine.connect() as conn:
            return {r.project: (r.key, r.computed_at) for r in conn.execute(select(t.project, t.key, t.computed_at))}

    def computed_at(self, project: str) -> datetime | None:
        with self.engine.connect() as conn:
            found = conn.execute(select(stack_plans.c.computed_at).where(stack_plans.c.project == project)).scalar()
        return found

    def put(self, project: str, key: str, plan: Plan, at: datetime) -> None:
        t = stack_plans.c
        with write_tx(self.engine) as conn:
            conn.execute(delete(stack_plans).where(t.project == project))
            conn.execute(insert(stack_plans).values(project=project, key=key, computed_at=at, document=plan.to_doc()))

    def drop(self, projects: Iterable[str]) -> None:
        wanted = list(projects)
        if wanted:
            with write_tx(self.engine) as conn:
                conn.execute(delete(stack_plans).where(stack_plans.c.project.in_(wanted)))

    def documents(self, projects: Iterable[str] | None = None) -> dict[str, Mapping[str, Any]]:
        t = stack_plans.c
        query = select(t.project, t.document)
        if projects is not None:
            query = query.where(t.project.in_(list(projects)))
        with self.engine.connect() as conn:
            return {r.project: r.document for r in conn.execute(query)}

    def plans(self, projects: Iterable[str] | None = None) -> dict[str, Plan]:
        return {p: Plan.from_doc(d) for p, d in self.documents(projects).items()}
