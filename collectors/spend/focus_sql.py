"""The one DuckDB query that turns a FOCUS file (or a user's FOCUS table) into daily totals.

Pure text building, no I/O. The query reads the needed columns as text, converts them with
TRY_CAST, and marks each row that breaks a FOCUS rule with a problem code instead of failing:
a refused file is then located row by row only on the error path (focus_duck.py), while the
normal path is one scan. It aggregates in two stages so that Python never sees a billing row:

1. per (project, charge category, GPU or not, currency, problem, local start day) for charges
   within one local day, keeping the exact period only for charges spanning several days (a
   handful of groups even in a huge export);
2. those multi-day groups are cut at local midnights with generate_series and spread in
   proportion to the time they overlap each day; the cumulative share is rounded and
   differenced, so each charge's days sum exactly to its cost (guide: DuckDB for FOCUS, 2.3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from collectors.spend.focus_params import ColumnRule, FocusParams, TagRule
from collectors.spend.gpu_families import candidate_pattern

HOURS_PATTERN = r"(?i)^(?:1\s*)?(?:hours?|hrs?|h)$|^(?:instance|gpu|node)[ -]?hours?$"
"""As focus_rows.is_hours, in RE2 syntax (the same text)."""

CATEGORIES = {"usage": "usage", "tax": "usage", "purchase": "purchase", "credit": "credit", "adjustment": "adjustment"}
"""FOCUS ChargeCategory (case-insensitive) -> how it is shown. Tax counts with usage (cloud
budgets include it by default); a missing column or NULL means usage."""

PROBLEMS = {
    "billed_null": ("BilledCost", "expected a number, got NULL (FOCUS requires a value)"),
    "billed_nan": ("BilledCost", "expected a number"),
    "billed_inf": ("BilledCost", "expected a finite number"),
    "effective_null": ("EffectiveCost", "expected a number, got NULL (FOCUS requires a value)"),
    "effective_nan": ("EffectiveCost", "expected a number"),
    "effective_inf": ("EffectiveCost", "expected a finite number"),
    "currency_null": ("BillingCurrency", "expected an ISO 4217 currency code, got NULL"),
    "start_null": ("ChargePeriodStart", "expected a date-time, got NULL"),
    "start_bad": ("ChargePeriodStart", "expected a date-time like 2024-09-18T22:00:00Z or 2024-09-18 22:00:00"),
    "end_null": ("ChargePeriodEnd", "expected a date-time, got NULL"),
    "end_bad": ("ChargePeriodEnd", "expected a date-time like 2024-09-18T23:00:00Z or 2024-09-18 23:00:00"),
    "end_before_start": ("ChargePeriodEnd", "the charge period ends before it starts"),
    "tags": ("Tags", "expected a JSON object of tags"),
    "quantity": ("", "expected a number"),
    "details": ("SkuPriceDetails", "expected a JSON object of SKU price details with a numeric GpuCount"),
    "category": ("ChargeCategory", "expected one of Usage, Purchase, Tax, Credit, Adjustment"),
}
"""Problem code -> (column, what was expected). The value is added when the row is located."""

GPU_KNOWN_UDF = "mlmon_gpus_known"
GPU_UDF = "mlmon_gpus"
GPU_GROUP_UDF = "mlmon_gpus_of_group"
"""Python functions (focus_duck.py) from a hash of (SkuPriceDetails, ChargeDescription) (and the
two texts) to GPUs per unit: >= 0 GPUs, -1 a GPU row of unknown count, -2 price details that are
not valid, -3 not known yet (mlmon_gpus_known only), -4 not a GPU row. The first two take Arrow
vectors (the row-by-row query that locates an error); the third one group at a time (the daily
query), which needs no Arrow conversion."""


def quote(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted SQL identifier (FOCUS names are PascalCase; PostgreSQL folds unquoted ones)."""
    return '"' + name.replace('"', '""') + '"'


def _pointer(key: str) -> str:
    return "/" + key.replace("~", "~0").replace("/", "~1")


def tag_value_sql(tags: str, key: str) -> str:
    """focus_rows.tag_value in SQL: the exact key, else a key equal once stripped (`" org"`),
    else a provider-prefixed one (`user:ml-project`). JSON null is no value."""
    exact = f"json_extract_string({tags}, {quote(_pointer(key))})"
    loose = f"list_filter(json_keys({tags}), lambda k: trim(k) = {quote(key)})"
    if ":" not in key:
        loose = (
            f"list_concat({loose}, list_filter(json_keys({tags}), lambda k: ends_with(trim(k), {quote(':' + key)})))"
        )
    found = f"json_extract_string({tags}, '/' || replace(replace({loose}[1], '~', '~0'), '/', '~1'))"
    return f"coalesce({exact}, CASE WHEN len({loose}) > 0 THEN {found} END)"


def tag_column_sql(rule: TagRule, present: Sequence[str], tags_ok: str) -> str:
    """The raw value of the rule's tag (computed once per row in the inner select)."""
    if "Tags" not in present:  # FOCUS: Tags is conditional; no column, no tags
        return "CAST(NULL AS VARCHAR)"
    return f"CASE WHEN {tags_ok} THEN {tag_value_sql(ident('Tags'), rule.key)} END"


def rule_sql(rule: TagRule | ColumnRule, tag_column: str) -> str:
    """The project a rule gives a row, or NULL (then the next rule decides)."""
    if isinstance(rule, TagRule):
        v = tag_column
        mapped = " ".join(f"WHEN {v} = {quote(k)} THEN {quote(p)}" for k, p in rule.values.items())
        otherwise = v if rule.unmapped == "keep" else "NULL"
        # trim copies the text: only a value starting with a space can be blank once trimmed
        blank = f"{v} = '' OR (starts_with({v}, ' ') AND trim({v}) = '')"
        return f"CASE WHEN {v} IS NULL OR {blank} THEN NULL {mapped} ELSE {otherwise} END"
    column = ident(rule.column)
    if rule.equals is not None:
        test = f"{column} IN ({', '.join(quote(v) for v in rule.equals)})"
    else:
        assert rule.matches is not None
        test = f"regexp_full_match({column}, {quote(rule.matches)})"
    return f"CASE WHEN {test} THEN {quote(rule.project)} END"


@dataclass(frozen=True)
class Plan:
    """What the query reads of a source with these columns."""

    columns: list[str]
    quantity: tuple[str, str] | None


def columns_read(params: FocusParams, present: Sequence[str]) -> Plan:
    """The columns the query reads: only those it needs (DuckDB skips the others)."""
    wanted = [c for c in params.columns_needed if c in present]
    if params.spread == "start" and "ChargePeriodEnd" in wanted:
        wanted.remove("ChargePeriodEnd")
    for optional in ("Tags", "ChargeCategory", "SkuPriceDetails", "ChargeDescription"):
        if optional in present and optional not in wanted:
            wanted.append(optional)
    quantity = None
    for pair in (("ConsumedQuantity", "ConsumedUnit"), ("PricingQuantity", "PricingUnit")):
        if all(c in present for c in pair):
            quantity = pair
            wanted += [c for c in pair if c not in wanted]
            break
    return Plan(wanted, quantity)


def _number(column: str) -> str:
    return f"TRY_CAST({ident(column)} AS DOUBLE)"


def _moment(column: str) -> str:
    return f"TRY_CAST({ident(column)} AS TIMESTAMPTZ)"


def _local_date(moment: str, tz: str) -> str:
    if tz == "UTC":  # the session's zone: no conversion needed
        return f"CAST({moment} AS DATE)"
    return f"CAST(timezone({quote(tz)}, {moment}) AS DATE)"


def rows_sql(params: FocusParams, present: Sequence[str], source: str, *, grouped_gpus: bool = False) -> str:
    """One row per billing row: amounts, period, project, category, GPUs and its problem code.

    `grouped_gpus` (the daily query): rows are not classified here; each row that could be a GPU
    row (price details, or a description naming a GPU family: gpu_families.candidate_pattern)
    gets `gpu_key`, a hash of the pair, and `qh`, its quantity in hours, so the pairs are
    classified after grouping, a few hundred calls into Python instead of one per 2,048 rows
    (which also held the GIL while DuckDB's threads waited). Otherwise (locating a bad row) each
    row is classified, as `gpus`."""
    plan = columns_read(params, present)
    has = set(plan.columns)
    # Only the cheap test here: malformed JSON makes DuckDB raise, and focus_duck then finds the row.
    # ltrim copies the text, so only the rare value that does not start with `{` pays for it.
    tags_ok = (
        "CASE WHEN starts_with(\"Tags\", '{') THEN true ELSE ltrim(\"Tags\")[1] = '{' END" if "Tags" in has else "false"
    )
    tag_columns = "".join(
        f"{tag_column_sql(r, present, tags_ok)} AS tag_{i},\n        "
        for i, r in enumerate(params.attribution)
        if isinstance(r, TagRule)
    )
    project = "coalesce(" + ", ".join(rule_sql(r, f"tag_{i}") for i, r in enumerate(params.attribution)) + ", NULL)"
    # The spec's own spellings are matched as they are; lower(trim()) copies every other value.
    spelled = " ".join(f"WHEN {quote(c.capitalize())} THEN {quote(c)}" for c in CATEGORIES)
    category = (
        f'CASE "ChargeCategory" {spelled} ELSE lower(trim("ChargeCategory")) END' if "ChargeCategory" in has else "NULL"
    )
    details = ident("SkuPriceDetails") if "SkuPriceDetails" in has else "CAST(NULL AS VARCHAR)"
    description = ident("ChargeDescription") if "ChargeDescription" in has else "CAST(NULL AS VARCHAR)"
    pairs = bool({"SkuPriceDetails", "ChargeDescription"} & has)
    if grouped_gpus and pairs:
        pattern = quote(candidate_pattern(params.gpu_instances))
        candidate = f"({details} IS NOT NULL OR regexp_matches({description}, {pattern}))"
        key, cached, gpus = f"CASE WHEN {candidate} THEN hash({details}, {description}) END", "-4", "-4"
    elif grouped_gpus:
        key, cached, gpus = "CAST(NULL AS UBIGINT)", "-4", "-4"
    elif pairs:
        key = f"hash({details}, {description})"
        cached = f"{GPU_KNOWN_UDF}(gpu_key)"
        gpus = f"CASE WHEN known_gpus = -3 THEN {GPU_UDF}(gpu_key, {details}, {description}) ELSE known_gpus END"
    else:
        key, cached, gpus = "0", "-4", "-4"
    if plan.quantity:  # evaluated for GPU rows only (DuckDB's CASE runs a branch on its rows alone)
        quantity = _number(plan.quantity[0])
        hours = f"regexp_full_match(trim({ident(plan.quantity[1])}), {quote(HOURS_PATTERN)})"
        seconds = f"CASE WHEN gpus > 0 AND {hours} AND isfinite({quantity}) THEN {quantity} * gpus * 3600 ELSE 0 END"
        in_hours = f"CASE WHEN gpu_key IS NOT NULL AND {hours} AND isfinite({quantity}) THEN {quantity} ELSE 0 END"
    else:
        seconds = in_hours = "0"
    end = _moment("ChargePeriodEnd") if "ChargePeriodEnd" in has else "CAST(NULL AS TIMESTAMPTZ)"
    checks = [
        ('"BilledCost" IS NULL', "billed_null"),
        ("billed IS NULL", "billed_nan"),
        ("NOT isfinite(billed)", "billed_inf"),
        ('"EffectiveCost" IS NULL', "effective_null"),
        ("effective IS NULL", "effective_nan"),
        ("NOT isfinite(effective)", "effective_inf"),
        ("currency IS NULL", "currency_null"),
        ('"ChargePeriodStart" IS NULL', "start_null"),
        ("cps IS NULL", "start_bad"),
    ]
    if "ChargePeriodEnd" in has:
        checks += [
            ('"ChargePeriodEnd" IS NULL', "end_null"),
            ("cpe IS NULL", "end_bad"),
            ("cpe < cps", "end_before_start"),
        ]
    if "Tags" in has:
        checks.append((f'"Tags" IS NOT NULL AND NOT ({tags_ok})', "tags"))
    if plan.quantity:
        checks.append((f"{ident(plan.quantity[0])} IS NOT NULL AND {_number(plan.quantity[0])} IS NULL", "quantity"))
    checks.append(("gpus = -2", "details"))
    if "ChargeCategory" in has:
        names = ", ".join(quote(c) for c in CATEGORIES)
        checks.append((f"category IS NOT NULL AND category NOT IN ({names})", "category"))
    problem = "CASE " + " ".join(f"WHEN {test} THEN {quote(code)}" for test, code in checks) + " END"
    # The normal path only needs to know whether any row breaks a rule: one boolean test is cheaper
    # than the CASE naming the problem (which only the error path evaluates).
    fine = ["isfinite(billed)", "isfinite(effective)", "currency IS NOT NULL", "cps IS NOT NULL"]
    if "ChargePeriodEnd" in has:
        fine.append("cpe >= cps")
    if "Tags" in has:
        fine.append(f'("Tags" IS NULL OR {tags_ok})')
    if plan.quantity:
        fine.append(f"({ident(plan.quantity[0])} IS NULL OR {_number(plan.quantity[0])} IS NOT NULL)")
    if not grouped_gpus:
        fine.append("gpus <> -2")
    if "ChargeCategory" in has:
        fine.append(f"(category IS NULL OR category IN ({names}))")
    # as a CASE condition each test runs only on the rows the previous ones passed
    bad = "CASE WHEN " + " AND ".join(fine) + " THEN false ELSE true END"
    return f"""
    SELECT *, {project} AS project, {problem} AS problem, {bad} AS bad, {seconds} AS gs, {in_hours} AS qh FROM (
    SELECT *, {gpus} AS gpus FROM (
    SELECT *, {cached} AS known_gpus FROM (
      SELECT
        {tag_columns}{key} AS gpu_key,
        {_number("BilledCost")} AS billed,
        {_number("EffectiveCost")} AS effective,
        trim("BillingCurrency") AS currency,
        {_moment("ChargePeriodStart")} AS cps,
        {end} AS cpe,
        {category} AS category,
        {", ".join(ident(c) for c in plan.columns)}
      FROM {source})))
    """


def daily_sql(params: FocusParams, present: Sequence[str], source: str) -> str:
    """Totals per (project, category, gpu, currency, bad, day): billed, effective,
    GPU-seconds, rows behind the day's figure, and rows starting that day."""
    tz = params.timezone
    spread = params.spread == "period" and "ChargePeriodEnd" in present
    details = ident("SkuPriceDetails") if "SkuPriceDetails" in present else "CAST(NULL AS VARCHAR)"
    description = ident("ChargeDescription") if "ChargeDescription" in present else "CAST(NULL AS VARCHAR)"
    d0 = _local_date("cps", tz)
    last = _local_date("(CASE WHEN cpe > cps THEN cpe - INTERVAL 1 MICROSECOND ELSE cps END)", tz)
    multi = f"(cpe IS NOT NULL AND cps IS NOT NULL AND cpe > cps AND {last} <> {d0})" if spread else "false"
    categories = " ".join(f"WHEN {quote(k)} THEN {quote(v)}" for k, v in CATEGORIES.items())
    local = "CAST(g.day AS TIMESTAMP)"
    day_start = local if tz == "UTC" else f"timezone({quote(tz)}, {local})"
    day_end = f"{local} + INTERVAL 1 DAY" if tz == "UTC" else f"timezone({quote(tz)}, {local} + INTERVAL 1 DAY)"
    if tz == "UTC":
        day_start, day_end = f"CAST({day_start} AS TIMESTAMPTZ)", f"CAST({day_end} AS TIMESTAMPTZ)"
    return f"""
    WITH r AS ({rows_sql(params, present, source, grouped_gpus=True)}),
    s0 AS MATERIALIZED (
      SELECT coalesce(project, '') AS project,
             CASE category {categories} ELSE 'usage' END AS category,
             gpu_key, currency, bad,
             {d0} AS d0,
             CASE WHEN {multi} THEN cps END AS mcps,
             CASE WHEN {multi} THEN cpe END AS mcpe,
             sum(billed) AS b, sum(effective) AS e, sum(qh) AS qh, count(*) AS n,
             any_value({details}) FILTER (WHERE gpu_key IS NOT NULL) AS details,
             any_value({description}) FILTER (WHERE gpu_key IS NOT NULL) AS description
      FROM r GROUP BY ALL),
    g AS (
      SELECT *, CASE WHEN gpu_key IS NULL THEN -4 ELSE {GPU_GROUP_UDF}(gpu_key, details, description) END AS gpus
      FROM s0),
    s1 AS MATERIALIZED (
      SELECT project, category, gpus >= -1 AS gpu, currency, bad OR gpus = -2 AS bad, d0, mcps, mcpe,
             sum(b) AS b, sum(e) AS e, sum(CASE WHEN gpus > 0 THEN qh * gpus * 3600 ELSE 0 END) AS gs,
             sum(n) AS n
      FROM g GROUP BY ALL),
    m AS (
      SELECT *, row_number() OVER () AS id, epoch_us(mcpe) - epoch_us(mcps) AS total_us,
             {_local_date("mcpe - INTERVAL 1 MICROSECOND", tz)} AS d1
      FROM s1 WHERE mcps IS NOT NULL),
    d AS (
      SELECT m.*, CAST(g.day AS DATE) AS day, {day_start} AS ds, {day_end} AS de
      FROM m, LATERAL (SELECT unnest(generate_series(m.d0, m.d1, INTERVAL 1 DAY)) AS day) g),
    o AS (SELECT *, epoch_us(least(mcpe, de)) - epoch_us(greatest(mcps, ds)) AS part_us FROM d),
    k AS (SELECT *, sum(part_us) OVER (PARTITION BY id ORDER BY day) AS cum_us FROM o),
    spread AS (
      SELECT project, category, gpu, currency, bad, day,
             round(b * cum_us / total_us, 6) - round(b * (cum_us - part_us) / total_us, 6) AS b,
             round(e * cum_us / total_us, 6) - round(e * (cum_us - part_us) / total_us, 6) AS e,
             gs * part_us / total_us AS gs,
             n, CASE WHEN day = d0 THEN n ELSE 0 END AS n0
      FROM k)
    SELECT project, category, gpu, currency, bad, day, sum(b), sum(e), sum(gs), sum(n), sum(n0)
    FROM (
      SELECT project, category, gpu, currency, bad, d0 AS day, b, e, gs, n, n AS n0 FROM s1 WHERE mcps IS NULL
      UNION ALL SELECT * FROM spread)
    GROUP BY ALL
    """


def locate_sql(params: FocusParams, present: Sequence[str], source: str, condition: str) -> str:
    """The first row (1 = the first after the header) matching `condition` over rows_sql's
    columns, with its problem and raw values. Run single-threaded so row order is the file's."""
    return f"""
    SELECT rn, * EXCLUDE (rn) FROM (
      SELECT row_number() OVER () AS rn, * FROM ({rows_sql(params, present, source)}))
    WHERE {condition} ORDER BY rn LIMIT 1
    """
