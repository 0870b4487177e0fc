"""CycloneDX 1.6 output (built with cyclonedx-python-lib): every package of every target as a
component, and every finding as a vulnerability that `affects` it.

Ratings carry each source's CVSS vector and score; an ignored finding gets an analysis with the
`will_not_fix` response and the reason and expiry in `detail` (state `in_triage`: the risk is
accepted for a time, not shown to be absent). Undetermined findings are marked with a property.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from cyclonedx.model import Property, XsUri
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.impact_analysis import ImpactAnalysisResponse, ImpactAnalysisState
from cyclonedx.model.tool import ToolRepository
from cyclonedx.model.vulnerability import (
    BomTarget,
    Vulnerability,
    VulnerabilityAnalysis,
    VulnerabilityRating,
    VulnerabilityReference,
    VulnerabilityScoreSource,
    VulnerabilitySeverity,
    VulnerabilitySource,
)
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from monitor import __version__
from monitor.stack.advisories.severity import Score
from monitor.stack.findings import Finding
from monitor.stack.inventory.model import Package
from monitor.stack.scan import ScanReport

_SEVERITY = {
    "critical": VulnerabilitySeverity.CRITICAL,
    "high": VulnerabilitySeverity.HIGH,
    "medium": VulnerabilitySeverity.MEDIUM,
    "low": VulnerabilitySeverity.LOW,
    "none": VulnerabilitySeverity.NONE,
    "unknown": VulnerabilitySeverity.UNKNOWN,
}


def _source(ident: str) -> VulnerabilitySource:
    return VulnerabilitySource(name="OSV", url=XsUri(f"https://osv.dev/vulnerability/{ident}"))


def _method(score: Score) -> VulnerabilityScoreSource:
    if score.kind == "CVSS_V4":
        return VulnerabilityScoreSource.CVSS_V4
    if score.kind == "CVSS_V3":
        return (
            VulnerabilityScoreSource.CVSS_V3_1
            if (score.vector or "").startswith("CVSS:3.1")
            else VulnerabilityScoreSource.CVSS_V3
        )
    return VulnerabilityScoreSource.OTHER


def _ratings(finding: Finding) -> list[VulnerabilityRating]:
    ratings = [
        VulnerabilityRating(
            source=_source(score.advisory),
            score=Decimal(str(score.score)) if score.score is not None else None,
            severity=_SEVERITY.get(score.rating, VulnerabilitySeverity.UNKNOWN),
            method=_method(score),
            vector=score.vector,
        )
        for score in finding.scores
    ]
    if not ratings:
        ratings.append(VulnerabilityRating(severity=_SEVERITY.get(finding.rating, VulnerabilitySeverity.UNKNOWN)))
    return ratings


def package_url(pkg: Package) -> PackageURL:
    """The purl of a package in its own ecosystem: conda's name as conda spells it (`pytorch`,
    `_libgcc_mutex`) with its build and channel, never the PyPI name it is matched under."""
    if pkg.ecosystem != "conda":
        return PackageURL(type="pypi", name=pkg.name, version=pkg.version)
    qualifiers: dict[str, str] = {}
    if pkg.build:
        qualifiers["build"] = pkg.build
    if pkg.index:
        qualifiers["channel"] = pkg.index
    return PackageURL(type="conda", name=pkg.native_name or pkg.name, version=pkg.version, qualifiers=qualifiers)


def _component(target: str, index: int, pkg: Package) -> Component:
    purl = package_url(pkg)
    properties = [Property(name="mlmon:target", value=target), Property(name="mlmon:origin", value=pkg.origin)]
    if pkg.scope:
        properties.append(Property(name="mlmon:scope", value=pkg.scope))
    return Component(
        name=purl.name,
        version=pkg.version,
        type=ComponentType.LIBRARY,
        purl=purl,
        bom_ref=f"t{index}:{purl.to_string()}",
        properties=properties,
    )


def _vulnerability(finding: Finding, refs: list[str], serial: int) -> Vulnerability:
    recommendation = f"Upgrade {finding.package} to {finding.fixed_in} or later." if finding.fixed_in else None
    workaround = finding.fix_hint
    properties = [
        Property(name="mlmon:state", value=finding.state),
        Property(name="mlmon:fix_state", value=finding.fix_state),
    ]
    properties += [Property(name="mlmon:note", value=note) for note in finding.notes]
    analysis = None
    if finding.ignore is not None:
        analysis = VulnerabilityAnalysis(
            state=ImpactAnalysisState.IN_TRIAGE,
            responses=[ImpactAnalysisResponse.WILL_NOT_FIX],
            detail=f"Ignored until {finding.ignore.expires.isoformat()}: {finding.ignore.reason} "
            f"(matched {finding.ignore.id}, {finding.ignore.origin or 'configuration'})",
        )
    return Vulnerability(
        bom_ref=f"vuln-{serial}-{finding.key}",
        id=finding.key,
        source=_source(finding.key),
        references=[VulnerabilityReference(id=i, source=_source(i)) for i in finding.ids if i != finding.key],
        ratings=_ratings(finding),
        description=finding.summary or None,
        recommendation=recommendation,
        workaround=workaround,
        published=finding.published,
        updated=finding.modified,
        analysis=analysis,
        affects=[BomTarget(ref=ref) for ref in refs],
        properties=properties,
    )


def render_cyclonedx(report: ScanReport) -> dict[str, Any]:
    components: list[Component] = []
    vulnerabilities: list[Vulnerability] = []
    for index, target in enumerate(report.targets):
        by_key: dict[tuple[str, str], Component] = {}
        for pkg in target.inventory.packages:
            if (pkg.name, pkg.version) not in by_key:
                by_key[(pkg.name, pkg.version)] = _component(target.name, index, pkg)
        components.extend(by_key.values())
        for finding in target.findings:
            refs = [
                str(by_key[(finding.package, v)].bom_ref) for v in finding.versions if (finding.package, v) in by_key
            ]
            vulnerabilities.append(_vulnerability(finding, refs, len(vulnerabilities)))
    metadata = BomMetaData(
        tools=ToolRepository(
            components=[Component(type=ComponentType.APPLICATION, name="mlmon", version=__version__, bom_ref="mlmon")]
        ),
        timestamp=report.generated_at,
        properties=[Property(name="mlmon:advisories", value=f"{report.advisories.kind} {report.advisories.source}")],
    )
    bom = Bom(components=components, vulnerabilities=vulnerabilities, metadata=metadata)
    doc: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string())
    return doc
