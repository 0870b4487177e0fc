"""The demo fleet: who owns what, what each project runs, spends and scores. Pure data.

Each project is chosen to show one behaviour a real fleet has (the `story`): a model version change
followed by an accuracy drop, a budget the run rate will overrun, GPUs held but idle, an old torch
with an overdue critical fix, a project nobody owns, and healthy ones to compare with.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Owner:
    name: str
    email: str
    slack: str | None = None


@dataclass(frozen=True)
class DemoProject:
    id: str
    name: str
    team: str
    story: str
    owners: tuple[Owner, ...]
    model: str
    accuracy: float
    """Accuracy the model scores before anything happens to it."""
    target: float | None
    """The declared success target (None: the project declares none, a red flag)."""
    budget: float | None
    """Monthly GPU + other cloud budget in USD (None: no budget, a red flag)."""
    gpu_daily: float
    """GPU spend per day at the start of the history (USD)."""
    gpu_growth: float = 0.0
    """Daily growth of the GPU spend (0.03: 3% more each day)."""
    gpu_efficiency: float = 0.7
    """Share of the held GPU time the GPUs are busy."""
    requirements: tuple[str, ...] = ()
    version: int = 3
    """The model version in production now."""
    version_changed_days_ago: float = 45.0
    drop_after_change: float = 0.0
    """Accuracy lost when the current version went live."""
    baseline: bool = True
    lead_time_days: float = 2.0
    extra: dict[str, str] = field(default_factory=dict)


def _owner(name: str, slack: str | None = None) -> Owner:
    return Owner(name, f"{name.split()[0].lower()}@example.com", slack)


TORCH_CURRENT = ("torch==2.14.1+cu128", "torchvision==0.29.1+cu128", "numpy==2.3.4", "pillow==12.3.0")

FLEET: tuple[DemoProject, ...] = (
    DemoProject(
        id="fraud",
        name="Card fraud scoring",
        team="risk",
        story="model version 8 went live two days ago and accuracy fell with it",
        owners=(_owner("Ada Lovelace", "@ada"), _owner("Alan Turing", "@alan")),
        model="fraud-detector",
        accuracy=0.962,
        target=0.93,
        budget=18000,
        gpu_daily=310,
        requirements=("torch==2.7.1+cu126", "torchvision==0.22.1+cu126", "numpy==2.2.6", "pillow==12.3.0"),
        version=8,
        version_changed_days_ago=2.0,
        drop_after_change=0.061,
    ),
    DemoProject(
        id="vision",
        name="Defect detection",
        team="manufacturing",
        story="GPU spend grows every day: the month's forecast overruns its budget",
        owners=(_owner("Grace Hopper", "@grace"), _owner("Katherine Johnson")),
        model="defect-resnet",
        accuracy=0.947,
        target=0.94,
        budget=24000,
        gpu_daily=520,
        gpu_growth=0.015,
        gpu_efficiency=0.82,
        requirements=TORCH_CURRENT,
    ),
    DemoProject(
        id="recsys",
        name="Product recommendations",
        team="commerce",
        story="eight GPUs held around the clock, busy 6% of the time",
        owners=(_owner("Barbara Liskov", "@barbara"), _owner("Donald Knuth")),
        model="two-tower",
        accuracy=0.31,
        target=0.30,
        budget=30000,
        gpu_daily=640,
        gpu_efficiency=0.06,
        requirements=TORCH_CURRENT,
    ),
    DemoProject(
        id="search-rank",
        name="Search ranking",
        team="search",
        story="still on torch 1.13.0: a critical fix has been available for years",
        owners=(_owner("Edsger Dijkstra", "@edsger"), _owner("Frances Allen")),
        model="lambdamart-bert",
        accuracy=0.874,
        target=0.86,
        budget=9000,
        gpu_daily=150,
        requirements=("torch==1.13.0+cu117", "torchvision==0.14.0+cu117", "numpy==1.26.4", "pillow==12.3.0"),
        version=14,
        version_changed_days_ago=123.0,
        lead_time_days=9.0,
    ),
    DemoProject(
        id="speech",
        name="Call transcription",
        team="voice",
        story="one owner only, and torch 2.2.0 with open findings",
        owners=(_owner("Margaret Hamilton", "@margaret"),),
        model="whisper-ft",
        accuracy=0.912,
        target=0.90,
        budget=15000,
        gpu_daily=280,
        requirements=("torch==2.2.0+cu121", "torchaudio==2.2.0+cu121", "numpy==1.26.4"),
    ),
    DemoProject(
        id="churn",
        name="Churn classifier",
        team="growth",
        story="healthy: on target, within budget, patched",
        owners=(_owner("Radia Perlman", "@radia"), _owner("John Backus")),
        model="churn-classifier",
        accuracy=0.931,
        target=0.92,
        budget=6000,
        gpu_daily=95,
        requirements=TORCH_CURRENT,
        version_changed_days_ago=12.0,
    ),
    DemoProject(
        id="forecast",
        name="Demand forecast",
        team="supply",
        story="nobody owns it",
        owners=(),
        model="tft-demand",
        accuracy=0.884,
        target=0.85,
        budget=7000,
        gpu_daily=120,
        requirements=TORCH_CURRENT,
    ),
    DemoProject(
        id="support-bot",
        name="Support assistant",
        team="support",
        story="healthy, CPU inference on a current torch",
        owners=(_owner("Sophie Wilson", "@sophie"), _owner("Ken Thompson")),
        model="support-llm",
        accuracy=0.792,
        target=0.78,
        budget=12000,
        gpu_daily=210,
        requirements=("torch==2.14.1+cpu", "numpy==2.3.4", "pillow==12.3.0"),
        version_changed_days_ago=6.0,
    ),
    DemoProject(
        id="ocr",
        name="Invoice OCR",
        team="finance",
        story="no success target, no baseline, no budget: nothing to judge it by",
        owners=(_owner("Hedy Lamarr", "@hedy"), _owner("Claude Shannon")),
        model="donut-invoices",
        accuracy=0.901,
        target=None,
        budget=None,
        gpu_daily=60,
        requirements=("torch==2.6.0+cu124", "torchvision==0.21.0+cu124", "numpy==2.2.6", "pillow==12.3.0"),
        baseline=False,
    ),
)
"""The projects with models, spend and stacks; the fleet's tenth project, `platform`, holds the
shared sources (the bill, the cluster allocation feed) and polls mlmon itself."""


def project(project_id: str) -> DemoProject:
    return next(p for p in FLEET if p.id == project_id)
