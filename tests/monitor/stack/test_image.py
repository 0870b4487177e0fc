"""Container images: layers read in order with whiteouts and opaque directories honoured, from an
OCI layout, a `docker save` tarball and a real registry (Debian's docker-registry, images pushed by
skopeo), with gzip and zstd layers, a CUDA torch build, a package deleted then reinstalled across
layers, registry auth, and every bad input failing with the image and the step named."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
from click.testing import CliRunner, Result

from monitor.cli import main
from monitor.stack.inventory.image.read import read_docker_archive, read_oci_layout, read_registry_image
from monitor.stack.inventory.image.registry import Credentials
from monitor.stack.inventory.model import Inventory, InventoryError
from tests.monitor.stack.images import (
    MEDIA,
    SITE,
    Registry,
    dist,
    docker_archive,
    metadata,
    opaque,
    whiteout,
    write_layout,
)

VERSION_PY = b"__version__ = '2.5.1'\ndebug = False\ncuda: Optional[str] = '12.4'\nhip = None\ngit_version = 'abc'\n"


def cuda_torch_layers() -> list[list[tuple[str, bytes | None]]]:
    """Base: requests 2.31.0, numpy, a vendored urllib3, conda records; then torch (CUDA 12.4) while
    requests and numpy are deleted; then requests 2.32.3 and numpy reinstalled, the vendor
    directory emptied (opaque) and refilled with idna."""
    base = [
        *dist("requests", "2.31.0"),
        *dist("numpy", "1.26.4"),
        ("opt/app/vendor/urllib3-1.26.0.dist-info/METADATA", metadata("urllib3", "1.26.0")),
        ("opt/conda/conda-meta/pillow-10.0.0-py311h0b08f3d_0.json",
         json.dumps({"name": "pillow", "version": "10.0.0", "build": "py311h0b08f3d_0"}).encode()),
        ("opt/conda/conda-meta/_libgcc_mutex-0.1-conda_forge.json",
         json.dumps({"name": "_libgcc_mutex", "version": "0.1", "build": "conda_forge"}).encode()),
        ("bin/sh", b"\x7fELF" + b"\0" * 2000),
    ]  # fmt: skip
    torch = [
        *dist("torch", "2.5.1"),
        (f"{SITE}/torch/version.py", VERSION_PY),
        *dist("nvidia-cuda-runtime-cu12", "12.4.127"),
        whiteout(f"{SITE}/requests-2.31.0.dist-info"),
        whiteout(f"{SITE}/numpy-1.26.4.dist-info"),
    ]
    reinstall = [
        *dist("requests", "2.32.3"),
        *dist("numpy", "1.26.4"),
        opaque("opt/app/vendor"),
        ("opt/app/vendor/idna-3.7.dist-info/METADATA", metadata("idna", "3.7")),
    ]
    return [base, torch, reinstall]


EXPECTED = {
    "requests": "2.32.3",
    "numpy": "1.26.4",
    "torch": "2.5.1",
    "nvidia-cuda-runtime-cu12": "12.4.127",
    "idna": "3.7",
    "pillow": "10.0.0",
    "-libgcc-mutex": "0.1",
}


def pairs(inventory: Inventory) -> dict[str, str]:
    return {p.name: p.version for p in inventory.packages}


def check_cuda_image(inventory: Inventory) -> None:
    assert pairs(inventory) == EXPECTED
    assert inventory.kind == "image" and inventory.python_version == "3.11"
    assert inventory.torch is not None and inventory.torch.variant == "cuda" and inventory.torch.accelerator == "12.4"
    conda = {p.name: p for p in inventory.packages if p.ecosystem == "conda"}
    assert conda["-libgcc-mutex"].native_name == "_libgcc_mutex" and conda["pillow"].build == "py311h0b08f3d_0"
    torch = next(p for p in inventory.packages if p.name == "torch")
    assert torch.origin.endswith(f"!/{SITE}/torch-2.5.1.dist-info")


@pytest.mark.parametrize("compression", ["gzip", "zstd", "tar"])
def test_oci_layout_layers_whiteouts_and_order(tmp_path: Path, compression: str) -> None:
    layout = write_layout(tmp_path / "layout", cuda_torch_layers(), ref="svc-1", compression=compression)
    inventory = read_oci_layout(layout.spec)
    check_cuda_image(inventory)
    assert any("platform linux/amd64" in note for note in inventory.notes)


def test_docker_save_tarball(tmp_path: Path) -> None:
    layout = write_layout(tmp_path / "layout", cuda_torch_layers())
    archive = docker_archive(layout, tmp_path / "svc.tar")
    check_cuda_image(read_docker_archive(str(archive)))


def test_whiteout_of_a_whole_directory_and_reinstall_in_the_same_layer(tmp_path: Path) -> None:
    layers = [
        [*dist("torch", "2.4.0", "opt/venv/lib/python3.12/site-packages"), *dist("six", "1.16.0")],
        # the venv is replaced wholesale: its site-packages deleted, a new one written in the same layer
        [whiteout("opt/venv"), *dist("torch", "2.6.0", "opt/venv/lib/python3.12/site-packages")],
    ]
    inventory = read_oci_layout(str(write_layout(tmp_path / "l", layers).path))
    assert pairs(inventory) == {"torch": "2.6.0", "six": "1.16.0"}


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    with Registry(tmp_path / "registry") as reg:
        yield reg  # type: ignore[misc]


def scan(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner(env=env).invoke(main, ["scan", *args], catch_exceptions=False)


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_registry_image_scanned_through_the_distribution_api(
    tmp_path: Path, registry: Registry, osv_dir: Path, compression: str
) -> None:
    layout = write_layout(tmp_path / "layout", cuda_torch_layers(), compression=compression)
    ref = registry.push(layout, "team/train", "1.0")
    with httpx.Client(timeout=30) as client:
        check_cuda_image(read_registry_image(ref, client))
    result = scan(f"image:{ref}", "--advisories", str(osv_dir), "--index", "none", "--format", "json")
    assert result.exit_code == 1, result.output
    target = json.loads(result.stdout)["targets"][0]
    assert target["kind"] == "image" and target["torch"]["accelerator"] == "12.4"
    findings = {f["id"]: f for f in target["findings"]}
    critical = findings["CVE-2025-32434"]
    assert critical["fixed_in"] == "2.6.0"
    assert critical["locations"][0]["file"] == f"image:{ref}!/{SITE}/torch-2.5.1.dist-info"
    assert any("manifest sha256:" in n for n in target["inventory_notes"])


def test_the_same_image_read_three_ways_agrees(tmp_path: Path, registry: Registry) -> None:
    layout = write_layout(tmp_path / "layout", cuda_torch_layers())
    ref = registry.push(layout, "svc", "same")
    archive = docker_archive(layout, tmp_path / "svc.tar")
    with httpx.Client(timeout=30) as client:
        remote = pairs(read_registry_image(ref, client))
    assert remote == pairs(read_oci_layout(str(layout.path))) == pairs(read_docker_archive(str(archive)))


def test_bad_images_name_the_reference_and_the_step(tmp_path: Path, registry: Registry, osv_dir: Path) -> None:
    good = registry.push(write_layout(tmp_path / "good", cuda_torch_layers()), "svc", "good")
    not_gzip = write_layout(tmp_path / "bad", [dist("six", "1.16.0")],
                            raw_layers=[(b"this is not a layer\n" * 50, MEDIA["gzip"])])  # fmt: skip
    bad = registry.upload(not_gzip, "svc", "bad")
    with httpx.Client(timeout=30) as client:
        with pytest.raises(InventoryError) as missing_tag:
            read_registry_image(f"{registry.host}/svc:nope", client)
        assert "resolve manifest" in str(missing_tag.value) and f"image:{registry.host}/svc:nope" in str(
            missing_tag.value
        )
        with pytest.raises(InventoryError) as unknown_repo:
            read_registry_image(f"{registry.host}/nobody/here:1", client)
        assert "resolve manifest" in str(unknown_repo.value) and "404" in str(unknown_repo.value)
        with pytest.raises(InventoryError) as garbage:
            read_registry_image(bad, client)
        message = str(garbage.value)
        assert "read layer sha256:" in message and "expected a gzip, zstd or tar layer" in message
        assert pairs(read_registry_image(good, client))["torch"] == "2.5.1"  # the others are unaffected
    result = scan(f"image:{bad}", "--advisories", str(osv_dir), "--index", "none")
    assert result.exit_code == 2 and f"image:{bad}" in result.output and "read layer" in result.output
    with pytest.raises(InventoryError) as bad_ref:
        read_oci_layout(str(tmp_path / "nowhere"))
    assert "resolve manifest" in str(bad_ref.value)


def test_truncated_and_tampered_layers_fail(tmp_path: Path) -> None:
    layout = write_layout(tmp_path / "l", cuda_torch_layers())
    blobs = layout.path / "blobs" / "sha256"
    index = json.loads((layout.path / "index.json").read_text())
    manifest = json.loads((blobs / index["manifests"][0]["digest"].split(":")[1]).read_text())
    torch_layer = blobs / manifest["layers"][1]["digest"].split(":")[1]
    data = torch_layer.read_bytes()
    torch_layer.write_bytes(data[: len(data) // 2])
    with pytest.raises(InventoryError) as truncated:
        read_oci_layout(str(layout.path))
    assert f"read layer sha256:{torch_layer.name}" in str(truncated.value)
    # same length, one byte changed: only the digest can tell
    flipped = bytearray(data)
    flipped[-9] ^= 0xFF  # inside gzip's CRC trailer, so only digests notice
    torch_layer.write_bytes(bytes(flipped))
    with pytest.raises(InventoryError) as tampered:
        read_oci_layout(str(layout.path))
    assert "does not match its digest" in str(tampered.value) or "CRC" in str(tampered.value)


@pytest.fixture
def auth_registry(tmp_path: Path) -> Registry:
    with Registry(tmp_path / "auth-registry", auth=True) as reg:
        yield reg  # type: ignore[misc]


def test_registry_that_needs_credentials(tmp_path: Path, auth_registry: Registry, osv_dir: Path) -> None:
    ref = auth_registry.push(write_layout(tmp_path / "layout", cuda_torch_layers()), "private/svc", "1")
    assert auth_registry.password
    with httpx.Client(timeout=30) as client:
        with pytest.raises(InventoryError) as refused:
            read_registry_image(ref, client)
        assert "authenticate" in str(refused.value) and "MLMON_REGISTRY_USERNAME" in str(refused.value)
        with pytest.raises(InventoryError) as wrong:
            read_registry_image(ref, client, Credentials("docker", "wrong-password"))
        assert "authenticate" in str(wrong.value) and "wrong-password" not in str(wrong.value)
        check_cuda_image(read_registry_image(ref, client, Credentials("docker", auth_registry.password)))
    env = {"MLMON_REGISTRY_USERNAME": "docker", "MLMON_REGISTRY_PASSWORD": auth_registry.password}
    result = scan(f"image:{ref}", "--advisories", str(osv_dir), "--index", "none", "--fail-on", "never", env=env)
    assert result.exit_code == 0, result.output
    assert auth_registry.password not in result.output


def test_bearer_token_flow(tmp_path: Path, registry: Registry) -> None:
    """Token auth needs a signing server; a proxy in front of the real registry plays the
    distribution spec's challenge and token endpoint, and forwards authorised requests."""
    from tests.support.http_server import Answer, LocalHttpServer, Seen

    ref = registry.push(write_layout(tmp_path / "layout", cuda_torch_layers()), "team/svc", "1")
    issued = "t0ken-" + os.urandom(4).hex()
    seen_scopes: list[str] = []
    with LocalHttpServer() as proxy:

        def token(seen: Seen) -> Answer:
            seen_scopes.extend(parse_qs(seen.query).get("scope", []))
            return Answer({"token": issued, "expires_in": 300})

        def forward(seen: Seen) -> Answer:
            if seen.header("authorization") != f"Bearer {issued}":
                realm = proxy.url("/token")
                return Answer(
                    {"errors": [{"code": "UNAUTHORIZED"}]},
                    status=401,
                    headers={
                        "WWW-Authenticate": f'Bearer realm="{realm}",service="test",scope="repository:team/svc:pull"'
                    },
                )
            upstream = httpx.get(f"http://{registry.host}{seen.path}", headers={"Accept": seen.header("accept") or ""})
            return Answer(upstream.content, status=upstream.status_code,
                          headers={"Content-Type": upstream.headers.get("content-type", "application/octet-stream")})  # fmt: skip

        proxy.route("/token", token)
        proxy.fallback = forward
        proxied = ref.replace(registry.host, proxy.url("").split("//", 1)[1].rstrip("/"))
        with httpx.Client(timeout=30) as client:
            check_cuda_image(read_registry_image(proxied, client))
    assert seen_scopes == ["repository:team/svc:pull"]


def test_image_findings_in_sarif_point_at_the_dockerfile(tmp_path: Path, osv_dir: Path) -> None:
    layout = write_layout(tmp_path / "layout", cuda_torch_layers())
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "Dockerfile").write_text("FROM python:3.11 AS build\nRUN true\nFROM build\nRUN pip install torch\n")
    result = scan(f"oci:{layout.path}", "--advisories", str(osv_dir), "--index", "none", "--format", "sarif",
                  "--sarif-root", str(checkout))  # fmt: skip
    assert result.exit_code == 1, result.output
    results = json.loads(result.stdout)["runs"][0]["results"]
    torch = next(r for r in results if r["ruleId"] == "CVE-2025-32434")
    location = torch["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "Dockerfile", "uriBaseId": "%SRCROOT%"}
    assert location["region"]["startLine"] == 3
    assert f"oci:{layout.path}" in torch["message"]["text"]


def test_a_reference_without_a_registry_is_refused_not_guessed() -> None:
    from monitor.stack.inventory.image.manifests import ImageInputError, parse_reference

    with pytest.raises(ImageInputError, match="names no registry"):
        parse_reference("pytorch/pytorch:2.4.0")
    ref = parse_reference("127.0.0.1:5000/team/model:1.2")
    assert (ref.registry, ref.tag) == ("127.0.0.1:5000", "1.2")
