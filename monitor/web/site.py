"""What every page says about the installation: its banner, and which advisory data is in use.

Set once per page request (`site_for`) and read by the base template, so no page can forget it.
The advisory line is truthful about the feed: never fetched, failing since, or the data in use
and how old it is (a snapshot's own date, not only when it was loaded).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime

from monitor.runtime import Runtime
from monitor.stack.store import FeedStatus, StackStore
from monitor.stack.sync import ADVISORY_FEED


@dataclass(frozen=True)
class Site:
    banner: str | None
    advisories: str
    advisories_ok: bool


UNKNOWN_SITE = Site(None, "Advisory data: unknown (reading the feed failed; see the server log)", False)
CURRENT: ContextVar[Site | None] = ContextVar("mlmon_site", default=None)


def _stamp(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "never"


def advisory_line(feed: FeedStatus | None, configured: str) -> tuple[str, bool]:
    """The sentence naming the advisory data in use, and whether it is current."""
    if feed is None or feed.last_success_at is None:
        if feed is not None and feed.last_error:
            why = f"{configured} failing since {_stamp(feed.last_attempt_at)}: {feed.last_error[:160]}"
        else:
            why = f"{configured}, not loaded yet"
        return f"Advisory data: none yet ({why})", False
    as_of = str(feed.detail.get("as_of") or "")[:10]
    data = f"{feed.location}, {feed.records:,} records"
    if as_of:
        data += f", data as of {as_of}"
    line = f"Advisory data: {data}, loaded {_stamp(feed.last_success_at)}"
    if feed.consecutive_failures:
        line += f"; refreshing has failed since {_stamp(feed.last_attempt_at)}"
        return line, False
    return line, True


def site_for(runtime: Runtime) -> Site:
    cfg = runtime.config.stack.advisories
    configured = f"offline database {cfg.path}" if cfg.path else f"OSV API {cfg.api_url}"
    feed = StackStore(runtime.store.engine).feed(ADVISORY_FEED)
    text, ok = advisory_line(feed, configured)
    return Site(runtime.config.ui.banner, text, ok)
