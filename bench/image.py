"""Image reading benchmark: the Python inventory of a CUDA PyTorch image of >= 2 GB, against `tar`
listing the same layers, side by side in one run.

The image is built once from the real torch wheel and the nvidia-* (and triton) wheels its
metadata pins for Linux x86_64 (fetched with `pip download --no-deps` through pip's configured
index, or taken from --wheels DIR), and cached under .cache/bench-image: an OCI layout whose
layers are gzip tar streams, as `docker build` writes them: a base layer, the CUDA libraries,
torch, then a small application layer that deletes one package and reinstalls another.

Timed, alternating which goes first each round:
  - mlmon: `read_oci_layout` in a child process (streams every layer, keeps only package
    metadata); its peak RSS is the child's own (bench/rss.py);
  - tar: `tar -tzf` on every layer blob in turn (GNU tar with gzip: listing must decompress all).
Goals: mlmon <= 2x tar, peak RSS <= 300 MiB. Figures are printed, never asserted; exit status 0
when both goals are met and the inventory is right.

    .venv/bin/python bench/image.py [--rounds 2] [--wheels DIR] [--torch 2.14.1] [--min-gb 2]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

if not __package__:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from packaging.markers import Marker
from packaging.requirements import Requirement

from bench.support import print_machine_speed

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench-image"
SITE = "usr/local/lib/python3.11/site-packages"
LINUX_311 = {
    "implementation_name": "cpython", "implementation_version": "3.11.9", "os_name": "posix",
    "platform_machine": "x86_64", "platform_python_implementation": "CPython", "platform_release": "",
    "platform_system": "Linux", "platform_version": "", "python_full_version": "3.11.9",
    "python_version": "3.11", "sys_platform": "linux", "extra": "",
}  # fmt: skip
GOAL_RATIO = 2.0
GOAL_RSS_MIB = 300


def pip_download(spec: str, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        # this machine's own tags: the wheels pin manylinux_2_27/_2_28 and an explicit --platform
        # would not accept the older glibc tags
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(target), spec],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    saved = re.findall(r"(?:Saved|File was already downloaded) (\S+\.whl)", done.stdout)
    if saved:
        return Path(saved[-1]) if Path(saved[-1]).is_absolute() else target / Path(saved[-1]).name
    name = re.split(r"[=<>!~]", spec)[0].lower().replace("-", "_")
    found = [p for p in target.glob("*.whl") if p.name.lower().startswith(name + "-")]
    if not found:
        raise SystemExit(f"pip download {spec} left no wheel in {target}")
    return max(found, key=lambda p: p.stat().st_mtime)


def wheel_metadata(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        return archive.read(name).decode()


def _requirements(wheel: Path, extras: set[str]) -> list[Requirement]:
    """The CUDA-side requirements of a wheel on Linux x86_64 / Python 3.11, under the given extras."""
    found = []
    for line in wheel_metadata(wheel).splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        req = Requirement(line.split(":", 1)[1].strip())
        if not re.match(r"^(nvidia-|triton|cuda-)", req.name):
            continue
        marker = Marker(str(req.marker)) if req.marker is not None else None
        if marker is None or any(marker.evaluate({**LINUX_311, "extra": e}) for e in ("", *extras)):
            found.append(req)
    return found


def gather_wheels(torch_version: str, wheels_dir: Path | None) -> list[Path]:
    """torch and everything CUDA it pulls in (following extras such as cuda-toolkit[cublas,...]),
    fetched with `pip download --no-deps` one by one; what pip cannot find here is reported."""
    target = wheels_dir or CACHE / "wheels"
    torch_wheel = pip_download(f"torch=={torch_version}", target)
    wheels = [torch_wheel]
    queue = [(r, set(r.extras)) for r in _requirements(torch_wheel, set())]
    seen: set[str] = set()
    while queue:
        req, extras = queue.pop(0)
        key = f"{req.name}[{','.join(sorted(extras))}]"
        if key in seen:
            continue
        seen.add(key)
        try:
            wheel = pip_download(f"{req.name}{req.specifier}", target)
        except (subprocess.CalledProcessError, SystemExit):
            print(f"not available here, left out: {req.name}{req.specifier}")
            continue
        if wheel not in wheels:
            wheels.append(wheel)
        queue.extend((r, set(r.extras)) for r in _requirements(wheel, extras))
    return wheels


class HashingWriter(io.RawIOBase):
    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.hash = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = bytes(data)
        self.hash.update(view)
        self.size += len(view)
        self.handle.write(view)
        return len(view)


def add_bytes(tar: tarfile.TarFile, path: str, data: bytes) -> None:
    info = tarfile.TarInfo(path)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def write_layer(blobs: Path, fill: Any) -> dict[str, Any]:
    """A gzip tar layer written by `fill(tar)`, stored under its digest."""
    partial = blobs / "partial.tmp"
    with partial.open("wb") as raw:
        hashing = HashingWriter(raw)
        with (
            gzip.GzipFile(fileobj=hashing, mode="wb", compresslevel=1, mtime=0) as gz,  # type: ignore[arg-type]
            tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
        ):
            fill(tar)
    digest = hashing.hash.hexdigest()
    partial.rename(blobs / digest)
    return {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": f"sha256:{digest}",
            "size": hashing.size}  # fmt: skip


def add_wheels(tar: tarfile.TarFile, wheels: Iterable[Path]) -> None:
    seen: set[str] = set()
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for item in archive.infolist():
                if item.is_dir():
                    continue
                path = f"{SITE}/{item.filename}"
                parts = path.split("/")
                for depth in range(1, len(parts)):
                    directory = "/".join(parts[:depth])
                    if directory not in seen:
                        seen.add(directory)
                        info = tarfile.TarInfo(directory)
                        info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
                        tar.addfile(info)
                info = tarfile.TarInfo(path)
                info.size, info.mode, info.mtime = item.file_size, 0o755, 0
                with archive.open(item) as member:
                    tar.addfile(info, member)


def small_dist(tar: tarfile.TarFile, name: str, version: str) -> None:
    folder = f"{SITE}/{name}-{version}.dist-info"
    add_bytes(tar, f"{folder}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode())
    add_bytes(tar, f"{SITE}/{name}/__init__.py", b"")


def build_image(wheels: list[Path], layout: Path) -> None:
    torch, companions = wheels[0], wheels[1:]
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    def base(tar: tarfile.TarFile) -> None:
        add_bytes(tar, "etc/os-release", b'PRETTY_NAME="bench"\n')
        for name, version in (("pip", "24.0"), ("setuptools", "69.5.1"), ("requests", "2.31.0")):
            small_dist(tar, name, version)

    def app(tar: tarfile.TarFile) -> None:
        add_bytes(tar, f"{SITE}/.wh.requests-2.31.0.dist-info", b"")
        small_dist(tar, "requests", "2.32.3")
        add_bytes(tar, "srv/app/main.py", b"print('hi')\n")

    layers = [write_layer(blobs, base)]
    layers.append(write_layer(blobs, lambda tar: add_wheels(tar, companions)))
    layers.append(write_layer(blobs, lambda tar: add_wheels(tar, [torch])))
    layers.append(write_layer(blobs, app))
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    config_digest = hashlib.sha256(config).hexdigest()
    (blobs / config_digest).write_bytes(config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": f"sha256:{config_digest}",
                   "size": len(config)},
        "layers": layers,
    }).encode()  # fmt: skip
    manifest_digest = hashlib.sha256(manifest).hexdigest()
    (blobs / manifest_digest).write_bytes(manifest)
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": f"sha256:{manifest_digest}",
        "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": "bench"}}]}))  # fmt: skip
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')


def layer_blobs(layout: Path) -> list[Path]:
    index = json.loads((layout / "index.json").read_text())
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((blobs / index["manifests"][0]["digest"].split(":")[1]).read_text())
    return [blobs / layer["digest"].split(":")[1] for layer in manifest["layers"]]


CHILD = """
import json, sys, time
from bench.rss import peak_rss_bytes
from monitor.stack.inventory.image.read import read_oci_layout
start = time.perf_counter()
inv = read_oci_layout(sys.argv[1])
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rss_kib": peak_rss_bytes() // 1024,
                  "packages": {p.name: p.version for p in inv.packages},
                  "torch": inv.torch.to_doc() if inv.torch else None}))
"""


def run_mlmon(layout: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", CHILD, str(layout)], env=env, check=True, capture_output=True,
                          text=True)  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def run_tar(blobs: list[Path]) -> float:
    start = time.perf_counter()
    for blob in blobs:
        subprocess.run(["tar", "-tzf", str(blob)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--torch", default="2.14.1")
    parser.add_argument("--wheels", type=Path, help="where pip downloads the wheels to (default: the cache)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--min-gb", type=float, default=2.0, help="the smallest image that counts")
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    if shutil.which("tar") is None:
        raise SystemExit("tar is not installed")
    layout = CACHE / f"torch-{args.torch}-cuda-layout"
    if args.rebuild and layout.exists():
        shutil.rmtree(layout)
    if not (layout / "index.json").is_file():
        wheels = gather_wheels(args.torch, args.wheels)
        print(f"building the image from {len(wheels)} wheels ({sum(w.stat().st_size for w in wheels) / 1e9:.2f} GB)")
        started = time.perf_counter()
        shutil.rmtree(layout, ignore_errors=True)
        build_image(wheels, layout)
        print(f"built in {time.perf_counter() - started:.0f} s (cached in {layout})")
    blobs = layer_blobs(layout)
    size = sum(b.stat().st_size for b in blobs)
    print_machine_speed()
    print(f"image: {layout} ({len(blobs)} gzip layers, {size / 1e9:.2f} GB compressed)")
    mlmon_times: list[float] = []
    tar_times: list[float] = []
    rss: list[int] = []
    last: dict[str, Any] = {}
    for number in range(args.rounds):
        order = ("mlmon", "tar") if number % 2 == 0 else ("tar", "mlmon")
        for which in order:
            if which == "mlmon":
                last = run_mlmon(layout)
                mlmon_times.append(last["seconds"])
                rss.append(last["rss_kib"])
            else:
                tar_times.append(run_tar(blobs))
        print(f"round {number + 1}: mlmon {mlmon_times[-1]:.1f} s, tar {tar_times[-1]:.1f} s")
    mlmon_s, tar_s = statistics.median(mlmon_times), statistics.median(tar_times)
    ratio = mlmon_s / tar_s
    peak = max(rss) / 1024
    packages = last.get("packages", {})
    torch = last.get("torch") or {}
    right = (
        packages.get("torch") == args.torch
        and packages.get("requests") == "2.32.3"
        and torch.get("variant") == "cuda"
        and any(name.startswith("nvidia-") for name in packages)
    )
    big_enough = size >= args.min_gb * 1e9
    print(f"packages found: {len(packages)} (torch {packages.get('torch')}, {torch.get('variant')} "
          f"{torch.get('accelerator')}; requests {packages.get('requests')} after the whiteout)")  # fmt: skip
    print(f"mlmon (median of {args.rounds}):  {mlmon_s:.1f} s, peak RSS {peak:.0f} MiB")
    print(f"tar -tzf every layer:      {tar_s:.1f} s")
    verdict = "met" if ratio <= GOAL_RATIO else "MISSED"
    print(f"ratio mlmon / tar:          {ratio:.2f}x (goal <= {GOAL_RATIO}x): {verdict}")
    print(f"peak RSS goal (<= {GOAL_RSS_MIB} MiB): {'met' if peak <= GOAL_RSS_MIB else 'MISSED'}")
    print(f"image >= {args.min_gb} GB: {'yes' if big_enough else 'NO'}; inventory right: {'yes' if right else 'NO'}")
    return 0 if ratio <= GOAL_RATIO and peak <= GOAL_RSS_MIB and right and big_enough else 1


if __name__ == "__main__":
    raise SystemExit(main())
