"""SARIF 2.1.0 output, shaped for GitHub code scanning.

One rule per vulnerability (aliases merged), one result per affected package per target, located
at the lock file line (or the installed package's METADATA `Version:` line) the package was read
from. What code scanning documents as needed is always there: `help.text` on every rule,
`security-severity` on every rule (a finding of unknown severity is shown as medium, never as
low), full regions, and `partialFingerprints.primaryLocationLineHash` computed the way the upload
action computes it. Paths under the SARIF root (`--sarif-root`, default the working directory) are
relative to `%SRCROOT%`; `invocations[0].workingDirectory` names that root, so the few absolute
paths left (files outside it) can still be placed.

Ignored findings are results with an accepted external suppression carrying the reason and the
expiry; undetermined findings are `note`-level results with the unparseable bound in the message.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from monitor import __version__
from monitor.stack.findings import Finding, variant
from monitor.stack.findings import locations as locations_of
from monitor.stack.report.line_hash import line_hashes
from monitor.stack.scan import ScanReport

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SRCROOT = "%SRCROOT%"
_LEVELS = {
    "critical": "error",
    "high": "error",
    "medium": "warning",
    "low": "note",
    "none": "note",
    "unknown": "warning",
}
# code scanning bands: > 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low
_BAND_SCORES = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "2.0", "none": "0.1", "unknown": "5.5"}
_MAX_TEXT = 1024


@dataclass(frozen=True)
class Spot:
    """A place in a file, resolved for SARIF: the file, its URI and the line region."""

    path: Path | None
    uri: str
    base: str | None
    line: int | None


class _Files:
    """File text and line hashes, read once per file."""

    def __init__(self) -> None:
        self.text: dict[Path, str | None] = {}
        self.hashes: dict[Path, dict[int, str]] = {}

    def read(self, path: Path) -> str | None:
        if path not in self.text:
            try:
                self.text[path] = path.read_text(encoding="utf-8") if path.is_file() else None
            except (OSError, UnicodeDecodeError):
                self.text[path] = None
        return self.text[path]

    def line_hash(self, path: Path, line: int) -> str | None:
        if path not in self.hashes:
            text = self.read(path)
            self.hashes[path] = line_hashes(text) if text is not None else {}
        return self.hashes[path].get(line)

    def region(self, path: Path | None, line: int | None) -> dict[str, int]:
        line = line or 1
        text = self.read(path) if path is not None else None
        width = 0
        if text is not None:
            lines = text.splitlines()
            if 0 < line <= len(lines):
                width = len(lines[line - 1].rstrip())
        return {"startLine": line, "startColumn": 1, "endLine": line, "endColumn": width + 1}


def _metadata_spot(directory: Path, files: _Files) -> tuple[Path, int | None]:
    """An installed distribution: its METADATA (PKG-INFO) file and the `Version:` line."""
    for name in ("METADATA", "PKG-INFO"):
        candidate = directory / name
        text = files.read(candidate)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if line.startswith("Version:"):
                return candidate, number
            if not line.strip():
                break
        return candidate, None
    return directory, None


def _dockerfile(root: Path, files: _Files) -> tuple[Path, int] | None:
    """The checkout's Dockerfile and its last FROM line: where an image finding can be shown."""
    path = root / "Dockerfile"
    text = files.read(path)
    if text is None:
        return None
    lines = [n for n, line in enumerate(text.splitlines(), start=1) if line.strip().upper().startswith("FROM ")]
    return path, (lines[-1] if lines else 1)


def _spot(origin: str, line: int | None, root: Path, files: _Files) -> Spot:
    if origin.startswith(("image:", "oci:", "docker-archive:")):
        # an image has no file in the repository: its Dockerfile stands for it when there is one
        dockerfile = _dockerfile(root, files)
        if dockerfile is not None:
            return Spot(dockerfile[0], dockerfile[0].relative_to(root).as_posix(), SRCROOT, dockerfile[1])
        inner = origin.split("!", 1)[-1].lstrip("/")
        return Spot(None, PurePosixPath(inner).as_posix() or "image", None, line)
    if "://" in origin:
        # a git remote's file: the path inside that repository
        inner = origin.split("!", 1)[-1].lstrip("/")
        return Spot(None, PurePosixPath(inner).as_posix(), SRCROOT, line)
    path = Path(origin).expanduser().resolve()
    if path.is_dir():
        path, found = _metadata_spot(path, files)
        line = line or found
    try:
        return Spot(path, path.relative_to(root).as_posix(), SRCROOT, line)
    except ValueError:
        return Spot(path, path.as_uri(), None, line)


def _level(finding: Finding) -> str:
    return "note" if finding.state == "undetermined" else _LEVELS.get(finding.rating, "warning")


def security_severity(finding: Finding) -> str:
    """The score code scanning sorts and bands on: the CVSS score, else the rating's band."""
    if finding.score is not None and finding.score > 0:
        if finding.rating == "critical" and finding.score <= 9.0:
            return "9.1"  # 9.0 is critical in CVSS but falls between code scanning's bands
        return f"{finding.score:.1f}"
    return _BAND_SCORES.get(finding.rating, "5.5")


def _message(target: str, finding: Finding, build: str | None) -> str:
    variant_text = f" ({build})" if build else ""
    others = [i for i in finding.ids if i != finding.key]
    aliases = f" ({', '.join(others)})" if others else ""
    state = "may be affected (undetermined)" if finding.state == "undetermined" else "is affected"
    fix = f" Fixed in {finding.fixed_in}." if finding.fixed_in else " No known fix."
    hint = f" {finding.fix_hint}." if finding.fix_hint else ""
    why = ""
    if finding.state == "undetermined":
        reasons = [m.reason for m in finding.members if m.verdict == "undetermined" and m.reason]
        why = f" {reasons[0]}." if reasons else ""
    return (
        f"{finding.package} {', '.join(finding.versions)}{variant_text} {state} by "
        f"{finding.key}{aliases} in {target}: {finding.summary.strip() or 'no summary'}.{fix}{hint}{why}"
    )


def _clip(text: str, limit: int = _MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _rule(finding: Finding) -> dict[str, Any]:
    severity = security_severity(finding)
    summary = finding.summary.strip() or finding.key
    shown = finding.rating if finding.rating != "unknown" else "unknown (shown as medium)"
    score = f" (CVSS {finding.score:.1f})" if finding.score is not None else ""
    fixed = (
        f"Upgrade {finding.package} to {finding.fixed_in} or later."
        if finding.fixed_in
        else "No fixed version is known."
    )
    url = f"https://osv.dev/vulnerability/{finding.key}"
    help_text = f"{summary}\n\nSeverity: {shown}{score}. IDs: {', '.join(finding.ids)}.\n{fixed}\nDetails: {url}"
    ids = ", ".join(finding.ids)
    help_markdown = f"**{summary}**\n\nSeverity: {shown}{score}. IDs: {ids}.\n\n{fixed}\n\n[{finding.key}]({url})"
    properties: dict[str, Any] = {
        "tags": ["security", "vulnerability", finding.package],
        "ids": list(finding.ids),
        "security-severity": severity,
        "precision": "high" if finding.state == "affected" else "low",
    }
    return {
        "id": finding.key,
        "name": finding.key.replace("-", "")[:255],
        "shortDescription": {"text": _clip(summary)},
        "fullDescription": {"text": _clip(f"{finding.key} ({', '.join(finding.ids)}): {summary}. Severity {shown}.")},
        "help": {"text": _clip(help_text, 8000), "markdown": _clip(help_markdown, 8000)},
        "helpUri": url,
        "defaultConfiguration": {"level": _LEVELS.get(finding.rating, "warning")},
        "properties": properties,
    }


def render_sarif(report: ScanReport, root: Path | None = None) -> dict[str, Any]:
    """The SARIF log of a scan; `root` is the checkout's root (default: the working directory)."""
    base = (root or Path.cwd()).expanduser().resolve()
    files = _Files()
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    for target, finding in report.all_findings():
        if finding.key not in rules:
            rules[finding.key] = _rule(finding)
        rule_index = list(rules).index(finding.key)
        spots = [_spot(loc.origin, loc.line, base, files) for loc in locations_of(target.inventory, finding.package)]
        if not spots:
            spots = [_spot(target.inventory.location, None, base, files)]
        locations = []
        for spot in spots:
            artifact: dict[str, Any] = {"uri": spot.uri}
            if spot.base:
                artifact["uriBaseId"] = spot.base
            locations.append(
                {"physicalLocation": {"artifactLocation": artifact, "region": files.region(spot.path, spot.line)}}
            )
        first = spots[0]
        line_hash = files.line_hash(first.path, first.line or 1) if first.path is not None else None
        stable = hashlib.sha256(f"{target.name}|{finding.package}|{finding.key}".encode()).hexdigest()[:32]
        fingerprints = {"mlmonFinding/v1": stable}
        # without the file's line hash the stable key stands in, so an alert never duplicates
        fingerprints["primaryLocationLineHash"] = line_hash or f"{stable[:16]}:1"
        result: dict[str, Any] = {
            "ruleId": finding.key,
            "ruleIndex": rule_index,
            "level": _level(finding),
            "message": {"text": _message(target.name, finding, variant(target.inventory, finding.package))},
            "locations": locations,
            "partialFingerprints": fingerprints,
            "properties": {
                "package": finding.package,
                "versions": list(finding.versions),
                "state": finding.state,
                "severity": finding.rating,
                "fixedIn": finding.fixed_in,
                "fixState": finding.fix_state,
                "variant": variant(target.inventory, finding.package),
                "target": target.name,
            },
        }
        if finding.ignore is not None:
            # `status` (errata 01) and `state` (CS01) name the same thing in the two published
            # 2.1.0 schemas; leaving both out is valid under either and means "accepted".
            result["suppressions"] = [
                {
                    "kind": "external",
                    "justification": f"{finding.ignore.reason} (until {finding.ignore.expires.isoformat()}, "
                    f"ignore {finding.ignore.id} in {finding.ignore.origin or 'configuration'})",
                    "properties": finding.ignore.to_doc(),
                }
            ]
        results.append(result)
    adv = report.advisories
    root_uri = base.as_uri().rstrip("/") + "/"
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "mlmon",
                        "informationUri": "https://osv.dev",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": list(rules.values()),
                    }
                },
                "originalUriBaseIds": {SRCROOT: {"uri": root_uri}},
                "results": results,
                "invocations": [
                    {
                        "executionSuccessful": True,
                        "endTimeUtc": report.generated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "workingDirectory": {"uri": root_uri},
                        "toolExecutionNotifications": [
                            {
                                "level": "warning",
                                "message": {"text": f"advisory record rejected: {r.where}: {r.reason}"},
                            }
                            for r in adv.rejected
                        ],
                    }
                ],
                "properties": {
                    "advisories": {"source": adv.source, "kind": adv.kind, "records": len(adv.advisories)},
                    "expiredIgnores": [r.to_doc() for r in report.expired_ignores],
                },
            }
        ],
    }
