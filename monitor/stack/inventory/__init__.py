"""Inventories: which packages (and which torch build) a project runs, read from environments,
lock files, SBOMs and repositories without running anything from them."""

from __future__ import annotations

from monitor.stack.inventory.environment import read_environment
from monitor.stack.inventory.model import Inventory, InventoryError, Package, TorchBuild
from monitor.stack.inventory.reader import read_lockfile, read_path, read_repo, read_sbom

__all__ = [
    "Inventory",
    "InventoryError",
    "Package",
    "TorchBuild",
    "read_environment",
    "read_lockfile",
    "read_path",
    "read_repo",
    "read_sbom",
]
