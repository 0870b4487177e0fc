"""The evaluation process of the `torch_eval` source: standard library and torch only.

Run as `python torch_worker.py` with a JSON request on stdin; answers one JSON line on stdout,
`{"ok": true, "n": ..., "accuracy": ..., "f1": ..., "loss": ..., "torch": ...}` or
`{"ok": false, "error": "..."}` (exit status 3). It limits its own address space before importing
torch, so a model or dataset too large for `max_memory` fails here, not in the service; it runs
on the CPU only and loads the dataset with `weights_only=True` (tensors, no arbitrary objects).

Metrics, for a classifier whose output is logits: `[N, C]` (C >= 2, multi-class: argmax, cross
entropy) or `[N]` / `[N, 1]` (binary: logit > 0, binary cross entropy with logits). Accuracy is
the share of correct predictions, loss the mean loss per example, F1 the F1 of class 1 (binary)
(`f1_average: auto` picks binary for two classes, macro otherwise) or the macro / micro /
weighted average over the classes present in the targets or predictions
(scikit-learn's definitions; scikit-learn is not needed in the worker, so they are computed here
from the confusion matrix).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from typing import Any


def main() -> int:
    try:
        request = json.loads(sys.stdin.read())
        result = evaluate(request)
    except _Refused as exc:
        _answer({"ok": False, "error": str(exc)})
        return 3
    except MemoryError:
        _answer({"ok": False, "error": "ran out of memory under max_memory"})
        return 3
    except Exception as exc:
        _answer({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        return 3
    _answer({"ok": True, **result})
    return 0


class _Refused(Exception):
    """The request cannot be evaluated; the message says why."""


def _answer(payload: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def _limit_memory(max_bytes: int | None) -> None:
    if max_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))


def evaluate(request: dict[str, Any]) -> dict[str, Any]:
    _limit_memory(request.get("max_memory"))
    try:
        import torch
    except ImportError as exc:
        raise _Refused(f"cannot import torch in {sys.executable} ({exc}); install mlmon[torch]") from None
    except MemoryError:
        raise _Refused("importing torch alone needs more than max_memory; raise max_memory") from None
    torch.set_num_threads(int(request.get("threads", 1)))
    started = time.monotonic()
    inputs, targets = _load_data(torch, str(request["data"]))
    model = _load_model(torch, str(request["model"]), str(request.get("format", "auto")))
    outputs = _predict(torch, model, inputs, int(request.get("batch_size", 1024)))
    metrics = _metrics(torch, outputs, targets, str(request.get("f1_average", "auto")))
    return {**metrics, "torch": torch.__version__, "seconds": time.monotonic() - started}


def _load_data(torch: Any, path: str) -> tuple[Any, Any]:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise _Refused(f"dataset file {path} does not exist") from None
    except Exception as exc:
        raise _Refused(
            f"dataset file {path} cannot be loaded with torch.load(weights_only=True): {_short(exc)}"
        ) from None
    if isinstance(data, dict):
        if "inputs" not in data or "targets" not in data:
            raise _Refused(
                f"dataset file {path}: expected a dict with 'inputs' and 'targets', got keys {sorted(map(str, data))}"
            )
        inputs, targets = data["inputs"], data["targets"]
    elif isinstance(data, list | tuple) and len(data) == 2:
        inputs, targets = data
    else:
        raise _Refused(
            f"dataset file {path}: expected {{'inputs': Tensor, 'targets': Tensor}} or (inputs, targets), "
            f"got {type(data).__name__}"
        )
    if not isinstance(inputs, torch.Tensor) or not isinstance(targets, torch.Tensor):
        raise _Refused(f"dataset file {path}: inputs and targets must be tensors")
    if inputs.ndim == 0 or targets.ndim != 1 or inputs.shape[0] != targets.shape[0]:
        raise _Refused(
            f"dataset file {path}: inputs {tuple(inputs.shape)} and targets {tuple(targets.shape)} must share their "
            "first dimension (targets: one class index per example)"
        )
    if targets.shape[0] == 0:
        raise _Refused(f"dataset file {path} holds no examples")
    return inputs, targets


def _load_model(torch: Any, path: str, form: str) -> Any:
    if not os.path.exists(path):
        raise _Refused(f"model file {path} does not exist")
    errors = []
    if form in ("auto", "torchscript"):
        try:
            model = torch.jit.load(path, map_location="cpu")
            model.eval()
            return model
        except Exception as exc:
            errors.append(f"torch.jit.load: {_short(exc)}")
    if form in ("auto", "export"):
        try:
            return torch.export.load(path).module()
        except Exception as exc:
            errors.append(f"torch.export.load: {_short(exc)}")
    raise _Refused(f"model file {path} is not a TorchScript or torch.export program ({'; '.join(errors)})")


def _predict(torch: Any, model: Any, inputs: Any, batch_size: int) -> Any:
    chunks = []
    with torch.inference_mode():
        for start in range(0, inputs.shape[0], batch_size):
            try:
                out = model(inputs[start : start + batch_size])
            except Exception as exc:
                raise _Refused(
                    f"the model failed on examples {start}..{start + batch_size - 1}: {_short(exc)}"
                ) from None
            if not isinstance(out, torch.Tensor):
                raise _Refused(f"the model returned {type(out).__name__}, expected a tensor of logits")
            chunks.append(out.float())
    return torch.cat(chunks)


def _metrics(torch: Any, outputs: Any, targets: Any, average: str) -> dict[str, Any]:
    n = targets.shape[0]
    if outputs.shape[0] != n:
        raise _Refused(f"the model returned {outputs.shape[0]} outputs for {n} examples")
    if not torch.isfinite(outputs).all():
        raise _Refused("the model's outputs contain NaN or infinity")
    functional = torch.nn.functional
    if outputs.ndim == 1 or (outputs.ndim == 2 and outputs.shape[1] == 1):
        logits = outputs.reshape(-1)
        classes = 2
        if not bool(((targets == 0) | (targets == 1)).all()):
            raise _Refused("binary output (one logit per example) needs targets of 0 and 1")
        loss = functional.binary_cross_entropy_with_logits(logits, targets.float(), reduction="sum")
        predicted = (logits > 0).long()
    elif outputs.ndim == 2:
        classes = outputs.shape[1]
        if targets.is_floating_point() or int(targets.min()) < 0 or int(targets.max()) >= classes:
            raise _Refused(f"targets must be class indices in [0, {classes - 1}] for {classes} logits per example")
        loss = functional.cross_entropy(outputs, targets.long(), reduction="sum")
        predicted = outputs.argmax(dim=1)
    else:
        raise _Refused(f"expected logits of shape [N, C] or [N], got {tuple(outputs.shape)}")
    truth = targets.long()
    confusion = torch.bincount(truth * classes + predicted, minlength=classes * classes).reshape(classes, classes)
    correct = int(confusion.diag().sum())
    return {
        "n": n,
        "accuracy": correct / n,
        "f1": _f1(torch, confusion, classes, average),
        "loss": float(loss) / n,
        "classes": classes,
    }


def _f1(torch: Any, confusion: Any, classes: int, average: str) -> float:
    c = confusion.double()
    tp = c.diag()
    fp = c.sum(dim=0) - tp
    fn = c.sum(dim=1) - tp
    denominator = 2 * tp + fp + fn
    per_class = torch.where(denominator > 0, 2 * tp / denominator.clamp(min=1), torch.zeros_like(tp))
    if average == "auto":
        average = "binary" if classes == 2 else "macro"
    if average == "binary":
        if classes != 2:
            raise _Refused(f"f1_average binary needs two classes, the model has {classes}")
        return float(per_class[1])
    if average == "micro":
        return float(tp.sum() / c.sum())
    present = (c.sum(dim=0) + c.sum(dim=1)) > 0
    if average == "weighted":
        support = c.sum(dim=1)
        return float((per_class * support).sum() / support.sum())
    return float(per_class[present].mean())


def _short(exc: BaseException) -> str:
    """One line of an error; for long ones (TorchScript prints a traceback) the start and the end,
    where the actual reason is."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = " ".join(lines) or type(exc).__name__
    if len(text) <= 400:
        return text
    return f"{text[:150]} ... {' '.join(lines[-2:])[-250:]}"


if __name__ == "__main__":
    sys.exit(main())
