"""OSV evaluation on the real torch advisories, table-driven over many torch versions (pre-releases
and local builds included), plus the rules the data does not exercise (limit, SEMVER, ordering)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from monitor.stack.advisories.index import AdvisoryIndex, alias_groups, fix_hint, group_key
from monitor.stack.advisories.matching import Verdict, is_vulnerable
from monitor.stack.advisories.model import Advisory, AdvisoryError, SeverityScore, parse_advisory
from monitor.stack.advisories.severity import combine, rating_of, score_vector


def _by_id(advisories: list[Advisory]) -> dict[str, Advisory]:
    return {a.id: a for a in advisories}


A = Verdict.AFFECTED
N = Verdict.NOT_AFFECTED
U = Verdict.UNDETERMINED

# (record, installed version, expected verdict). Each expectation follows from the record's own
# ranges read by hand; the comment says which rule decides.
CASES = [
    # fixed 2.6.0: below affected, pre-release of the fix still affected, local label ignored
    ("PYSEC-2025-41", "1.13.1", A),
    ("PYSEC-2025-41", "2.5.1", A),
    ("PYSEC-2025-41", "2.5.1+cu121", A),
    ("PYSEC-2025-41", "2.6.0rc1", A),  # 2.6.0rc1 < 2.6.0
    ("PYSEC-2025-41", "2.6.0.dev20241112", A),
    ("PYSEC-2025-41", "2.6.0", N),
    ("PYSEC-2025-41", "2.6.0+cpu", N),  # public 2.6.0 >= fixed
    ("PYSEC-2025-41", "2.13.0+cpu", N),
    ("GHSA-53q9-r3pm-6pq6", "2.5.1+rocm6.2", A),
    ("GHSA-53q9-r3pm-6pq6", "2.6.0", N),
    # last_affected 2.6.0: the bound itself affected, everything above not
    ("GHSA-3749-ghw9-m3mg", "2.6.0", A),
    ("GHSA-3749-ghw9-m3mg", "2.6.0+cu124", A),  # strict PEP 440 would say no: the label sorts above
    ("GHSA-3749-ghw9-m3mg", "2.6.0+cu126", A),
    ("GHSA-3749-ghw9-m3mg", "2.7.0rc1", N),
    ("GHSA-3749-ghw9-m3mg", "2.7.0", N),
    # last_affected "2.6.0+cu124" (a local label in the bound) plus a versions list with 2.6.0
    ("PYSEC-2025-191", "2.6.0+cu126", A),  # public 2.6.0 is listed in versions
    ("PYSEC-2025-191", "2.6.0", A),
    ("PYSEC-2025-191", "2.5.0", A),
    ("PYSEC-2025-191", "2.6.1", N),  # above the bound, not listed
    # introduced 2.6.0, fixed 2.7.0: the rc before the introduction is outside, the next rc inside
    ("PYSEC-2025-199", "2.6.0rc1", N),
    ("PYSEC-2025-199", "2.5.1", N),
    ("PYSEC-2025-199", "2.6.0", A),
    ("PYSEC-2025-199", "2.6.0+cu124", A),
    ("PYSEC-2025-199", "2.7.0rc1", A),
    ("PYSEC-2025-199", "2.7.0", N),
    # a bound that is not PEP 440: undetermined, never dropped and never "not affected"
    ("PYSEC-2025-194", "2.5.1", U),
    ("PYSEC-2025-194", "2.13.0+cpu", U),
    ("PYSEC-2025-189", "2.6.0+cu124", U),
    ("PYSEC-2025-210", "2.4.0", U),
    # disputed but not withdrawn: still matches (fixed 2.5.0)
    ("PYSEC-2024-259", "2.4.1", A),
    ("PYSEC-2024-259", "2.5.0", N),
    # twins that disagree: GHSA says last_affected 2.7.1, PYSEC says fixed 2.8.0
    ("GHSA-887c-mr87-cxwp", "2.7.1", A),
    ("GHSA-887c-mr87-cxwp", "2.7.1+cu126", A),
    ("GHSA-887c-mr87-cxwp", "2.8.0rc1", N),  # above last_affected
    ("PYSEC-2026-1970", "2.8.0rc1", A),  # below fixed
    ("PYSEC-2026-1970", "2.8.0", N),
    # no fix: last_affected 2.10.0
    ("PYSEC-2026-139", "2.10.0", A),
    ("PYSEC-2026-139", "2.10.0+cu128", A),
    ("PYSEC-2026-139", "2.11.0", N),
    # GIT ranges are skipped; the ECOSYSTEM range decides
    ("PYSEC-2022-43015", "1.13.0", A),
    ("PYSEC-2022-43015", "1.13.1", N),
    # the record names `pytorch`, not `torch`
    ("GHSA-63cw-57p8-fm3p", "2.9.1", N),
    ("PYSEC-2026-2286", "2.9.1", A),
    ("PYSEC-2026-2286", "2.10.0", N),
    # an installed version that is not PEP 440
    ("PYSEC-2025-41", "2.5.1-custom.build", U),
]


@pytest.mark.parametrize(("record", "installed", "expected"), CASES)
def test_osv_rules_on_real_torch_records(
    advisories: list[Advisory], record: str, installed: str, expected: Verdict
) -> None:
    assert is_vulnerable(_by_id(advisories)[record], "torch", installed) is expected


def test_withdrawn_records_never_match(index: AdvisoryIndex, advisories: list[Advisory]) -> None:
    withdrawn = _by_id(advisories)["GHSA-4vmg-rw8f-92f9"]
    assert withdrawn.withdrawn is not None
    # its range (last_affected 2.3.1) would match 2.3.0, but the index never loads it
    assert is_vulnerable(withdrawn, "torch", "2.3.0") is Verdict.AFFECTED
    for version in ("2.3.0", "2.3.1", "1.0.0"):
        assert all("GHSA-4vmg-rw8f-92f9" not in m.ids for m in index.match("torch", version))
    assert index.count == len(advisories) - 1


TORCH_EXPECTED = {
    # installed version -> (affected vulnerability IDs, undetermined ones), by main ID (CVE)
    "2.6.0": {
        "affected": {"CVE-2025-2953", "CVE-2026-24747", "CVE-2025-3730", "CVE-2025-46148", "CVE-2025-46149",
                     "CVE-2025-46150", "CVE-2025-46152", "CVE-2025-46153", "CVE-2025-55551", "CVE-2025-55552",
                     "CVE-2025-55553", "CVE-2025-55554", "CVE-2025-55557", "CVE-2025-55558", "CVE-2025-55560",
                     "CVE-2026-4538"},
        "undetermined": {"CVE-2025-2148", "CVE-2025-2149", "CVE-2025-2998", "CVE-2025-2999", "CVE-2025-3000",
                         "CVE-2025-3001", "CVE-2025-3121", "CVE-2025-3136", "CVE-2025-63396"},
    },
    "2.13.0+cpu": {"affected": set(), "undetermined": {"CVE-2025-2148", "CVE-2025-2149", "CVE-2025-2998",
                   "CVE-2025-2999", "CVE-2025-3000", "CVE-2025-3001", "CVE-2025-3121", "CVE-2025-3136", "CVE-2025-63396"}},
    "2.11.0": {"affected": set(), "undetermined": {"CVE-2025-2148", "CVE-2025-2149", "CVE-2025-2998",
               "CVE-2025-2999", "CVE-2025-3000", "CVE-2025-3001", "CVE-2025-3121", "CVE-2025-3136", "CVE-2025-63396"}},
    "2.10.0": {"affected": {"CVE-2026-4538"}, "undetermined": {"CVE-2025-2148", "CVE-2025-2149", "CVE-2025-2998",
               "CVE-2025-2999", "CVE-2025-3000", "CVE-2025-3001", "CVE-2025-3121", "CVE-2025-3136", "CVE-2025-63396"}},
    "2.9.1": {"affected": {"CVE-2026-24747", "CVE-2026-4538"}, "undetermined": {"CVE-2025-2148", "CVE-2025-2149",
              "CVE-2025-2998", "CVE-2025-2999", "CVE-2025-3000", "CVE-2025-3001", "CVE-2025-3121", "CVE-2025-3136",
              "CVE-2025-63396"}},
}  # fmt: skip


@pytest.mark.parametrize("installed", sorted(TORCH_EXPECTED))
def test_whole_database_for_a_torch_version(index: AdvisoryIndex, installed: str) -> None:
    matches = index.match("torch", installed)
    affected = {m.key for m in matches if m.state is Verdict.AFFECTED}
    undetermined = {m.key for m in matches if m.state is Verdict.UNDETERMINED}
    assert affected == TORCH_EXPECTED[installed]["affected"]
    assert undetermined == TORCH_EXPECTED[installed]["undetermined"]


@pytest.mark.parametrize("build", ["+cpu", "+cu118", "+cu121", "+cu124", "+cu126", "+rocm6.2.4"])
@pytest.mark.parametrize("public", ["1.13.0", "2.2.2", "2.5.1", "2.6.0", "2.7.1", "2.9.0", "2.12.1", "2.15.0"])
def test_local_builds_match_like_their_public_version(index: AdvisoryIndex, public: str, build: str) -> None:
    plain = {(m.key, m.state) for m in index.match("torch", public)}
    local = {(m.key, m.state) for m in index.match("torch", public + build)}
    assert local == plain
    assert all(m.version == public + build for m in index.match("torch", public + build))


def test_aliases_are_merged_into_one_vulnerability(index: AdvisoryIndex, advisories: list[Advisory]) -> None:
    torch_records = [a for a in advisories if "torch" in a.packages() or "pytorch" in a.packages()]
    assert len(torch_records) == 46 - 7  # the 7 unreviewed GHSAs list no affected package
    groups = alias_groups(a for a in advisories if a.withdrawn is None)
    by_key = {group_key(i for a in g for i in a.ids): g for g in groups}
    # GHSA files do not list their PYSEC twin; PYSEC-2024-250 and GHSA-vmg3 share only the CVE
    assert {a.id for a in by_key["CVE-2024-31584"]} == {"PYSEC-2024-250", "GHSA-vmg3-jxcp-7rqw"}
    assert {a.id for a in by_key["CVE-2025-3730"]} == {"PYSEC-2026-1970", "GHSA-887c-mr87-cxwp"}
    match = next(m for m in index.match("torch", "2.7.1") if m.key == "CVE-2025-3730")
    assert set(match.ids) == {"CVE-2025-3730", "PYSEC-2026-1970", "GHSA-887c-mr87-cxwp"}
    assert {(m.advisory, m.verdict) for m in match.members} == {
        ("GHSA-887c-mr87-cxwp", "affected"), ("PYSEC-2026-1970", "affected")}  # fmt: skip
    assert match.fixed_in == "2.8.0" and match.last_affected == "2.7.1"
    # 2.8.0rc1: the GHSA ceiling says not affected, the PYSEC fix says affected: shown, not hidden
    rc = next(m for m in index.match("torch", "2.8.0rc1") if m.key == "CVE-2025-3730")
    assert rc.state is Verdict.AFFECTED and rc.disagreement
    torch_keys = {m.key for v in ("1.0.0", "2.2.0", "2.4.0", "2.6.0", "2.10.0") for m in index.match("torch", v)}
    assert len(torch_keys) == 31  # 32 CVEs in the torch files; CVE-2024-7804 is only in the withdrawn GHSA


def test_undetermined_reports_the_bound_and_unreviewed_twins(index: AdvisoryIndex) -> None:
    match = next(m for m in index.match("torch", "2.5.1") if m.key == "CVE-2025-3000")
    assert match.state is Verdict.UNDETERMINED
    assert any("'2.6.0-NA' is not a PEP 440 version" in n for n in match.notes)
    verdicts = {m.advisory: m for m in match.members}
    assert verdicts["PYSEC-2025-194"].verdict == "undetermined"
    assert verdicts["GHSA-rrmf-rvhw-rf47"].verdict == "no_data"
    assert "unreviewed" in verdicts["GHSA-rrmf-rvhw-rf47"].reason
    pytorch = next(m for m in index.match("torch", "2.9.1") if m.key == "CVE-2026-24747")
    assert {m.advisory: m.verdict for m in pytorch.members}["GHSA-63cw-57p8-fm3p"] == "no_data"


def test_no_known_fix_is_its_own_state_with_an_unverified_hint(index: AdvisoryIndex, releases: dict[str, Any]) -> None:
    match = next(m for m in index.match("torch", "2.10.0") if m.key == "CVE-2026-4538")
    assert match.fixed_in is None and match.last_affected == "2.10.0" and match.fix_versions == ()
    assert fix_hint(match, releases) == "first release above last_affected 2.10.0: 2.11.0 (unverified)"
    fixed = next(m for m in index.match("torch", "2.5.1") if m.key == "CVE-2025-32434")
    assert fixed.fixed_in == "2.6.0" and fix_hint(fixed, releases) is None


def test_severity_from_vectors_and_labels(index: AdvisoryIndex) -> None:
    # PYSEC-2025-189: CVSS 3 = 7.5; its twin GHSA-c678 rates the same CVE 2.3 (CVSS 4): highest wins, both kept
    match = next(m for m in index.match("torch", "2.5.1") if m.key == "CVE-2025-2148")
    assert match.severity.rating == "high" and match.severity.score == 7.5
    assert {(s.advisory, s.kind) for s in match.severity.scores} >= {("PYSEC-2025-189", "CVSS_V3"),
                                                                      ("GHSA-c678-jfcj-6jmf", "CVSS_V4")}  # fmt: skip
    assert match.severity.disagreement
    critical = next(m for m in index.match("torch", "2.5.1") if m.key == "CVE-2025-32434")
    assert critical.severity.rating == "critical" and critical.severity.score == 9.8
    assert rating_of(0.0) == "none" and rating_of(3.9) == "low" and rating_of(4.0) == "medium"
    assert rating_of(8.9) == "high" and rating_of(9.0) == "critical"
    broken = score_vector("X", SeverityScore("CVSS_V3", "CVSS:3.1/AV:Q"))
    assert broken is not None and broken.rating == "unknown" and broken.error
    assert combine([]).rating == "unknown"


def _record(ranges: list[dict[str, Any]], versions: list[str] | None = None, **extra: Any) -> Advisory:
    affected: dict[str, Any] = {"package": {"ecosystem": "PyPI", "name": "Demo_Pkg"}, "ranges": ranges}
    if versions is not None:
        affected["versions"] = versions
    return parse_advisory({"id": "TEST-1", "modified": "2026-01-01T00:00:00Z", "affected": [affected], **extra})


def _range(*events: tuple[str, str], kind: str = "ECOSYSTEM") -> dict[str, Any]:
    return {"type": kind, "events": [{k: v} for k, v in events]}


@pytest.mark.parametrize(
    ("ranges", "installed", "expected"),
    [
        # limit: versions at or above every limit are outside the range
        ([_range(("introduced", "1.0"), ("limit", "2.0"))], "1.5", A),
        ([_range(("introduced", "1.0"), ("limit", "2.0"))], "2.0", N),
        ([_range(("introduced", "1.0"), ("limit", "*"))], "9.0", A),
        ([_range(("introduced", "1.0"), ("limit", "2.0"), ("limit", "3.0"))], "2.5", A),
        # events out of order are sorted: fixed 1.2 then introduced 1.0 still means [1.0, 1.2)
        ([_range(("fixed", "1.2"), ("introduced", "1.0"))], "1.1", A),
        ([_range(("fixed", "1.2"), ("introduced", "1.0"))], "1.2", N),
        # several introduced/fixed pairs
        ([_range(("introduced", "0"), ("fixed", "1.0"), ("introduced", "2.0"), ("fixed", "2.1"))], "1.5", N),
        ([_range(("introduced", "0"), ("fixed", "1.0"), ("introduced", "2.0"), ("fixed", "2.1"))], "2.0.5", A),
        # SEMVER ranges are evaluated the same way; GIT ranges are skipped
        ([_range(("introduced", "0"), ("fixed", "1.0.0"), kind="SEMVER")], "0.9", A),
        ([_range(("introduced", "0"), ("fixed", "abc"), kind="GIT")], "0.9", N),
        # an invalid bound in one range: undetermined unless another range or the versions list matches
        ([_range(("introduced", "0"), ("fixed", "1.0-final!"))], "0.5", U),
        (
            [_range(("introduced", "0"), ("fixed", "1.0-final!")), _range(("introduced", "0"), ("fixed", "0.6"))],
            "0.5",
            A,
        ),
        ([_range(("introduced", "0"), ("limit", "x.y"))], "0.5", U),
    ],
)
def test_rules_the_torch_data_does_not_exercise(
    ranges: list[dict[str, Any]], installed: str, expected: Verdict
) -> None:
    assert is_vulnerable(_record(ranges), "demo-pkg", installed) is expected


def test_versions_list_and_pep503_names() -> None:
    record = _record([], versions=["1.0", "1.0.post1", "not a version"])
    assert record.affected[0].name == "demo-pkg"
    assert is_vulnerable(record, "demo-pkg", "1.0.0") is A  # PEP 440 equality
    assert is_vulnerable(record, "demo-pkg", "1.0+local") is A
    assert is_vulnerable(record, "demo-pkg", "1.0.post1") is A
    assert is_vulnerable(record, "demo-pkg", "1.1") is N
    assert is_vulnerable(record, "other", "1.0") is N


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({"modified": "2026-01-01T00:00:00Z"}, "id: required string is missing"),
        ({"id": "X-1"}, "X-1.modified: required timestamp is missing"),
        ({"id": "X-1", "modified": "yesterday"}, "expected an RFC 3339 timestamp"),
        ({"id": "X-1", "modified": "2026-01-01T00:00:00Z", "affected": [{"package": {"name": "a"}}]}, "affected[0].package"),
        ({"id": "X-1", "modified": "2026-01-01T00:00:00Z",
          "affected": [{"package": {"ecosystem": "PyPI", "name": "a"}, "ranges": [{"type": "ECOSYSTEM",
                                                                                   "events": [{"introduced": "0", "fixed": "1"}]}]}]},
         "ranges[0].events[0]: expected exactly one of"),
        ({"id": "X-1", "modified": "2026-01-01T00:00:00Z", "aliases": "CVE-1"}, "aliases: expected a list of strings"),
    ],
)  # fmt: skip
def test_malformed_records_name_the_field(doc: dict[str, Any], fragment: str) -> None:
    with pytest.raises(AdvisoryError) as raised:
        parse_advisory(doc, "file.json")
    assert fragment in str(raised.value)


def test_timestamps_with_any_fraction_digits() -> None:
    record = parse_advisory(
        {"id": "X", "modified": "2025-03-30T16:15:14.380Z", "published": "2026-05-21T14:54:44.011147Z"}
    )
    assert record.modified == datetime(2025, 3, 30, 16, 15, 14, 380000, tzinfo=UTC)
    assert record.published is not None and record.published.microsecond == 11147


def test_index_caches_per_version(index: AdvisoryIndex) -> None:
    first = index.match("torch", "2.4.0")
    assert index.match("torch", "2.4.0") is first
    assert index.match("numpy", "1.16.0") and not index.match("numpy", "1.21.0") and not index.match("flask", "1.0")
