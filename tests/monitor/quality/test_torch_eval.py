"""The `torch_eval` source on a real model: a small classifier trained here, saved as TorchScript
and as a torch.export program, evaluated in the bounded subprocess; and everything that can go
wrong with a model file failing the source, never the service."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.core.clock import FrozenClock
from tests.conftest import RuntimeFactory
from tests.monitor.quality.recorded import Collecting

torch = pytest.importorskip("torch", reason="install torch into the dev venv: .venv/bin/pip install torch==2.13.0")
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:`torch.jit.:DeprecationWarning")]


@dataclass(frozen=True)
class Trained:
    scripted: Path
    exported: Path
    holdout: Path
    accuracy: float
    f1: float
    loss: float
    n: int


def _f1_macro(truth: list[int], predicted: list[int], classes: int) -> float:
    scores = []
    for c in range(classes):
        tp = sum(1 for t, p in zip(truth, predicted, strict=True) if t == c and p == c)
        fp = sum(1 for t, p in zip(truth, predicted, strict=True) if t != c and p == c)
        fn = sum(1 for t, p in zip(truth, predicted, strict=True) if t == c and p != c)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return sum(scores) / classes


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """A 3-class softmax classifier on 4 features, trained for a few hundred steps on the CPU."""
    directory = tmp_path_factory.mktemp("model")
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 2.0, 0]])

    def sample(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, 3, (n,), generator=generator)
        return centres[y] + torch.randn(n, 4, generator=generator), y

    x, y = sample(3000)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    optimiser = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(200):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimiser.step()
    model.eval()
    hx, hy = sample(2000)
    torch.save({"inputs": hx, "targets": hy}, directory / "holdout.pt")
    scripted = directory / "model.pt"
    torch.jit.save(torch.jit.script(model), scripted)
    exported = directory / "model.pt2"
    torch.export.save(torch.export.export(model, (hx[:8],), dynamic_shapes=({0: torch.export.Dim("batch")},)), exported)
    with torch.no_grad():
        logits = model(hx)
    predicted = logits.argmax(1)
    return Trained(
        scripted, exported, directory / "holdout.pt",
        accuracy=int((predicted == hy).sum()) / 2000,
        f1=_f1_macro(hy.tolist(), predicted.tolist(), 3),
        loss=float(torch.nn.functional.cross_entropy(logits, hy)),
        n=2000,
    )  # fmt: skip


def _world(make_runtime: RuntimeFactory, clock: FrozenClock, **params: object) -> Collecting:
    lines = "\n".join(f"          {k}: {v}" for k, v in params.items())
    config = f"""
projects:
  - id: churn
    owners: [{{name: Ada, email: ada@example.com}}]
    sources:
      - name: holdout
        kind: torch_eval
        timeout: 60s
        params:
          labels: {{model: churn-classifier}}
{lines}
"""
    return Collecting(make_runtime(config, clock=clock), clock, env=dict(os.environ))


@pytest.mark.parametrize("form", ["scripted", "exported"])
def test_accuracy_f1_loss_and_n_of_a_real_model(
    make_runtime: RuntimeFactory, clock: FrozenClock, trained: Trained, form: str
) -> None:
    model = trained.scripted if form == "scripted" else trained.exported
    world = _world(make_runtime, clock, model=model, data=trained.holdout, batch_size=300)
    record = world.run("holdout")
    assert record.ok, record.error
    labels = (("model", "churn-classifier"),)
    assert world.latest("accuracy")[labels][0][1] == pytest.approx(trained.accuracy, abs=1e-9)
    assert world.latest("f1_score")[labels][0][1] == pytest.approx(trained.f1, abs=1e-9)
    assert world.latest("loss")[labels][0][1] == pytest.approx(trained.loss, rel=1e-5)
    assert world.latest("accuracy_examples")[labels][0][1] == trained.n
    assert 0.8 < trained.accuracy < 1.0


def test_a_new_model_file_is_an_event(
    make_runtime: RuntimeFactory, clock: FrozenClock, trained: Trained, tmp_path: Path
) -> None:
    model = tmp_path / "deployed.pt"
    model.write_bytes(trained.scripted.read_bytes())
    world = _world(make_runtime, clock, model=model, data=trained.holdout)
    assert world.run("holdout").ok
    assert world.runtime.store.events.events(project="churn") == []
    other = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(4, 3)))
    torch.jit.save(other, model)
    clock.advance(timedelta(hours=1))
    assert world.run("holdout").ok
    (event,) = world.runtime.store.events.events(project="churn")
    assert event.kind == "model_version" and event.describe().startswith("model file deployed.pt changed (sha256 ")
    assert world.latest("accuracy")[(("model", "churn-classifier"),)][-1][1] < 0.7, "an untrained model"


def test_bad_model_and_data_files_fail_the_source(
    make_runtime: RuntimeFactory, clock: FrozenClock, trained: Trained, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a model at all")
    pickled = tmp_path / "pickled.pt"
    torch.save(
        {"inputs": torch.zeros(3, 4), "targets": torch.zeros(3, dtype=torch.long), "extra": object.__new__(Trained)},
        pickled,
    )
    wrong_shape = tmp_path / "wrong.pt"
    torch.save({"inputs": torch.zeros(5, 4), "targets": torch.zeros(4, dtype=torch.long)}, wrong_shape)
    bad_classes = tmp_path / "classes.pt"
    torch.save({"inputs": torch.zeros(5, 4), "targets": torch.full((5,), 7)}, bad_classes)
    cases = {
        (garbage, trained.holdout): f"model file {garbage} is not a TorchScript or torch.export program",
        (trained.scripted, tmp_path / "missing.pt"): f"dataset file {tmp_path / 'missing.pt'}",
        (trained.scripted, pickled): "cannot be loaded with torch.load(weights_only=True)",
        (trained.scripted, wrong_shape): "must share their first dimension",
        (trained.scripted, bad_classes): "targets must be class indices in [0, 2]",
    }
    for (model, data), message in cases.items():
        world = _world(make_runtime, clock, model=model, data=data)
        record = world.run("holdout")
        assert record.outcome == "failed" and message in (record.error or ""), (model, data, record.error)
        assert world.runtime.store.samples.find_series(project="churn") == []


def test_memory_and_time_bounds(
    make_runtime: RuntimeFactory, clock: FrozenClock, trained: Trained, tmp_path: Path
) -> None:
    class Hungry(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            big = torch.ones(300_000_000, dtype=torch.float64)  # 2.4 GB
            return x[:, :3] + big[:1]

    class Slow(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            w = torch.eye(4)
            for _ in range(100_000_000):
                x = x @ w
            return x[:, :3]

    hungry, slow = tmp_path / "hungry.pt", tmp_path / "slow.pt"
    torch.jit.save(torch.jit.script(Hungry()), hungry)
    torch.jit.save(torch.jit.script(Slow()), slow)
    world = _world(make_runtime, clock, model=hungry, data=trained.holdout, max_memory="1GiB")
    record = world.run("holdout")
    assert record.outcome == "failed" and "can't allocate memory" in (record.error or ""), record.error
    world = _world(make_runtime, clock, model=hungry, data=trained.holdout, max_memory="6GiB", batch_size=100_000)
    assert world.run("holdout").ok, "the same model passes with room to spare"
    world = _world(make_runtime, clock, model=slow, data=trained.holdout, max_seconds="3s")
    record = world.run("holdout")
    assert record.outcome == "failed" and "did not finish within 3s" in (record.error or "")


def test_a_crashing_evaluation_process_fails_only_the_source(
    make_runtime: RuntimeFactory, clock: FrozenClock, trained: Trained, tmp_path: Path
) -> None:
    crashing = tmp_path / "python-that-crashes"
    crashing.write_text("#!/bin/sh\nkill -SEGV $$\n")
    crashing.chmod(0o755)
    world = _world(make_runtime, clock, model=trained.scripted, data=trained.holdout, python=crashing)
    record = world.run("holdout")
    assert record.outcome == "failed" and "evaluation process died of SIGSEGV" in (record.error or "")
