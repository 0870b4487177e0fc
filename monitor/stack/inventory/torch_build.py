"""Which hardware a torch build targets: CUDA, ROCm, CPU or XPU, and the accelerator version.

In order of trust: the local version label (`+cu121`, `+rocm6.2`, `+cpu`), the values written into
`torch/version.py` at build time, a conda build string (`py3.11_cuda12.1_cudnn9.1.0_0`,
`cuda126_py311h...`), then the CUDA runtime packages pinned next to torch. Wheels from the default
index carry no local label but are CUDA builds, which is why the pinned packages are consulted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from monitor.stack.inventory.model import Package, TorchBuild
from monitor.stack.versions import local_label, parse_version

TORCH = "torch"

_CUDA_LABEL = re.compile(r"cu(\d+)(\d)$")
_ROCM_LABEL = re.compile(r"rocm(\d+(?:\.\d+)*)")
_CONDA_CUDA = re.compile(r"cuda_?(\d+)\.?(\d)(?:\.\d+)?(?=[_.]|$)")
_CONDA_CPU = re.compile(r"(?:^|_)cpu(?:_|$)")
_CUDA_RUNTIME = re.compile(r"nvidia-cuda-runtime(?:-cu(\d+))?$")


def from_label(version: str) -> TorchBuild | None:
    """The build a local label names (`2.5.1+cu121` -> CUDA 12.1), or None without a label."""
    label = local_label(version)
    if not label:
        return None
    for part in label.split("."):
        cuda = _CUDA_LABEL.fullmatch(part)
        if cuda:
            return TorchBuild(version, "cuda", f"{int(cuda.group(1))}.{cuda.group(2)}", f"local label +{label}")
    rocm = _ROCM_LABEL.search(label)
    if rocm:
        return TorchBuild(version, "rocm", rocm.group(1), f"local label +{label}")
    if label.split(".")[0] == "cpu":
        return TorchBuild(version, "cpu", None, f"local label +{label}")
    if label.split(".")[0] == "xpu":
        return TorchBuild(version, "xpu", None, f"local label +{label}")
    return TorchBuild(version, "unknown", None, f"unrecognised local label +{label}")


def from_version_py(version: str, values: Mapping[str, object]) -> TorchBuild:
    """The build `torch/version.py` describes (its `cuda`, `hip`, `xpu` assignments)."""
    cuda, hip, xpu = values.get("cuda"), values.get("hip") or values.get("rocm"), values.get("xpu")
    if isinstance(cuda, str) and cuda:
        return TorchBuild(version, "cuda", _short(cuda), f"torch/version.py cuda={cuda!r}")
    if isinstance(hip, str) and hip:
        return TorchBuild(version, "rocm", _short(hip), f"torch/version.py hip={hip!r}")
    if isinstance(xpu, str) and xpu:
        return TorchBuild(version, "xpu", None, f"torch/version.py xpu={xpu!r}")
    return TorchBuild(version, "cpu", None, "torch/version.py: cuda, hip and xpu are None")


def from_conda_build(version: str, build: str) -> TorchBuild | None:
    """The build a conda build string names (pytorch channel or conda-forge spelling)."""
    cuda = _CONDA_CUDA.search(build)
    if cuda:
        return TorchBuild(version, "cuda", f"{int(cuda.group(1))}.{cuda.group(2)}", f"conda build {build}")
    if _CONDA_CPU.search(build) or build.startswith("cpu"):
        return TorchBuild(version, "cpu", None, f"conda build {build}")
    if "rocm" in build:
        rocm = _ROCM_LABEL.search(build)
        return TorchBuild(version, "rocm", rocm.group(1) if rocm else None, f"conda build {build}")
    return None


def from_companions(version: str, packages: Sequence[Package]) -> TorchBuild | None:
    """The CUDA version pinned beside torch (`nvidia-cuda-runtime-cu12`, `cuda-toolkit`, `pytorch-cuda`)."""
    for pkg in packages:
        runtime = _CUDA_RUNTIME.fullmatch(pkg.name)
        if runtime or pkg.name in ("cuda-toolkit", "pytorch-cuda", "cuda-version", "cudatoolkit"):
            parsed = parse_version(pkg.version)
            if parsed is None:
                continue
            release = parsed.release
            accelerator = f"{release[0]}.{release[1]}" if len(release) > 1 else str(release[0])
            return TorchBuild(version, "cuda", accelerator, f"pinned {pkg.name}=={pkg.version}")
    for pkg in packages:
        if pkg.name.startswith(("nvidia-cudnn-cu", "nvidia-cublas-cu", "nvidia-nccl-cu")):
            major = pkg.name.rsplit("-cu", 1)[1]
            return TorchBuild(version, "cuda", major, f"pinned {pkg.name}=={pkg.version} (CUDA {major}.x)")
    return None


_CPU_ONLY_PLATFORMS = {
    "darwin": "the target is macOS, where torch wheels are CPU builds (with Metal through MPS)",
    "win32": "the target is Windows, where torch wheels without a local label are CPU builds",
}


def detect(
    packages: Sequence[Package], version_py: Mapping[str, object] | None = None, platform: str | None = None
) -> TorchBuild | None:
    """The torch build of an inventory, or None when torch is not in it. `platform`: the target's
    `sys_platform`, when the inventory was read for one."""
    torch = next((p for p in packages if p.name == TORCH), None)
    if torch is None:
        torch = next((p for p in packages if p.name in ("pytorch", "pytorch-cpu", "pytorch-gpu")), None)
    if torch is None:
        return None
    version = torch.version
    found = from_label(version)
    if found is not None and found.variant != "unknown":
        return found
    if version_py is not None:
        return from_version_py(version, version_py)
    conda = next((p for p in packages if p.build and p.name in (TORCH, "pytorch")), None)
    if conda is not None and conda.build:
        from_build = from_conda_build(version, conda.build)
        if from_build is not None:
            return from_build
    companions = from_companions(version, packages)
    if companions is not None:
        return companions
    if platform in _CPU_ONLY_PLATFORMS:
        return TorchBuild(version, "cpu", None, _CPU_ONLY_PLATFORMS[platform])
    return found or TorchBuild(version, "unknown", None, "no local label, version.py or CUDA packages")


def _short(version: str) -> str:
    """`12.1.105` -> `12.1`; ROCm `6.2.41133-...` -> `6.2`."""
    parts = re.split(r"[.\-]", version)
    return ".".join(parts[:2]) if len(parts) >= 2 else version
