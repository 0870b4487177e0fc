"""uv.lock's dependency graph: which of its packages a target installs, and which only dev groups bring.

uv.lock pins every platform's packages and states its markers on the dependency edges, not on the
packages. The packages installed are those reached from the project's own entries (workspace
members, path dependencies) through `dependencies`, every optional group and every dev group,
along edges whose markers hold on the target; an edge with `extra = [...]` also brings that
package's optional dependencies for those extras. What only the dev groups reach is `dev`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from monitor.stack.inventory.model import InventoryError
from monitor.stack.inventory.target import Selection
from monitor.stack.versions import canonical_name


class UvGraph:
    """uv.lock's dependency edges, walked from the project's own entries."""

    def __init__(self, entries: list[Mapping[str, Any]], origin: str, lines: list[int], selection: Selection) -> None:
        self.entries = entries
        self.origin = origin
        self.lines = lines
        self.selection = selection
        self.by_name: dict[str, list[int]] = {}
        for index, entry in enumerate(entries):
            self.by_name.setdefault(canonical_name(str(entry["name"])), []).append(index)

    def scopes(self, roots: set[int]) -> dict[int, str | None]:
        """Entry index -> None (installed with the project) or "dev" (only through a dev group), for
        every entry reached along edges whose markers hold on the target (all edges without one)."""
        reached: dict[int, str | None] = {}
        seen: set[tuple[int, str | None]] = set()
        main: list[Mapping[str, Any]] = []
        dev: list[Mapping[str, Any]] = []
        for root in roots:
            main.extend(self._edges(root, "dependencies"))
            for extra in self._groups(root, "optional-dependencies"):
                main.extend(self._edges(root, "optional-dependencies", extra))
            for group in self._groups(root, "dev-dependencies"):
                dev.extend(self._edges(root, "dev-dependencies", group))
        # the main walk first: what it reaches stays main when a dev group needs it too
        self._walk(main, None, reached, seen)
        self._walk(dev, "dev", reached, seen)
        return reached

    def _walk(
        self,
        edges: list[Mapping[str, Any]],
        scope: str | None,
        reached: dict[int, str | None],
        seen: set[tuple[int, str | None]],
    ) -> None:
        stack = list(edges)
        while stack:
            edge = stack.pop()
            marker = edge.get("marker")
            if isinstance(marker, str) and not self._holds(str(edge.get("name")), marker):
                continue
            extras = (
                [e for e in edge.get("extra", []) if isinstance(e, str)] if isinstance(edge.get("extra"), list) else []
            )
            for index in self._resolve(edge):
                reached.setdefault(index, scope)
                for state in [(index, None), *((index, extra) for extra in extras)]:
                    if state in seen:
                        continue
                    seen.add(state)
                    if state[1] is None:
                        stack.extend(self._edges(index, "dependencies"))
                    else:
                        stack.extend(self._edges(index, "optional-dependencies", state[1]))

    def _holds(self, name: str, marker: str) -> bool:
        target = self.selection.target
        if target is None:
            return True
        verdict = target.holds(marker)
        if verdict is None:
            self.selection.unread.append(f"the edge to {name} ({marker})")
        return verdict is not False

    def _resolve(self, edge: Mapping[str, Any]) -> list[int]:
        found = self.by_name.get(canonical_name(str(edge.get("name", ""))), [])
        version = edge.get("version")
        if isinstance(version, str):
            pinned = [i for i in found if self.entries[i].get("version") == version]
            return pinned or found
        return found

    def _groups(self, index: int, key: str) -> list[str]:
        table = self.entries[index].get(key)
        return [str(k) for k in table] if isinstance(table, Mapping) else []

    def _edges(self, index: int, key: str, group: str | None = None) -> list[Mapping[str, Any]]:
        value: Any = self.entries[index].get(key)
        if group is not None:
            value = value.get(group) if isinstance(value, Mapping) else None
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(e, Mapping) and "name" in e for e in value):
            line = self.lines[index] if index < len(self.lines) else None
            where = f"{key}.{group}" if group else key
            raise InventoryError(
                self.origin,
                f"package[{index}] ({self.entries[index]['name']}): expected `{where}` as a list of "
                "{ name = ... } tables",
                line,
            )
        return value
