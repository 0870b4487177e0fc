"""`image:REF`, `oci:DIR[:REF]` and `docker-archive:FILE`: an image's Python inventory.

Any failure names the image and the step (resolve manifest, authenticate, fetch config, read
layer <digest>), and nothing of a partly read image is returned.
"""

from __future__ import annotations

import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

from monitor.stack.inventory.image.archives import directory_opener, resolve_docker_archive, resolve_layout
from monitor.stack.inventory.image.layers import Layer, LayerError, union
from monitor.stack.inventory.image.manifests import DEFAULT_PLATFORM, ImageInputError, parse_platform, parse_reference
from monitor.stack.inventory.image.packages import inventory_of
from monitor.stack.inventory.image.registry import Credentials, RegistryClient, RegistryError
from monitor.stack.inventory.model import Inventory, InventoryError

PREFIXES = ("image:", "oci:", "docker-archive:")


def is_image_spec(spec: str) -> bool:
    return spec.startswith(PREFIXES)


def _read(location: str, layers: Sequence[Layer], digest: str, platform: str | None) -> Inventory:
    try:
        files = union(layers)
    except (LayerError, ImageInputError) as exc:
        raise InventoryError(location, f"read {exc}") from None
    notes = [f"{location}: manifest {digest}" + (f", platform {platform}" if platform else "")]
    return inventory_of(files, location, notes)


def read_registry_image(
    reference: str,
    client: httpx.Client,
    credentials: Credentials | None = None,
    platform: str = DEFAULT_PLATFORM,
) -> Inventory:
    location = f"image:{reference}"
    try:
        parse_platform(platform)
        ref = parse_reference(reference)
    except ImageInputError as exc:
        raise InventoryError(location, str(exc)) from None
    registry = RegistryClient(client, ref, credentials or Credentials())
    try:
        layers, digest, found = registry.resolve(platform)
        return _read(location, [registry.layer(r) for r in layers], digest, found)
    except RegistryError as exc:
        raise InventoryError(location, str(exc)) from None


def read_oci_layout(spec: str, platform: str = DEFAULT_PLATFORM) -> Inventory:
    """`DIR` or `DIR:REF` (the `org.opencontainers.image.ref.name` annotation)."""
    location = f"oci:{spec}"
    path, tag = Path(spec), None
    if not path.is_dir() and ":" in spec:
        head, _, tail = spec.rpartition(":")
        path, tag = Path(head), tail
    if not path.is_dir():
        raise InventoryError(location, "resolve manifest: expected an OCI image layout directory")
    try:
        layers, digest, found = resolve_layout(directory_opener(path), tag, platform, location)
    except ImageInputError as exc:
        raise InventoryError(location, f"resolve manifest: {exc}") from None
    return _read(location, layers, digest, found)


def read_docker_archive(path: str, platform: str = DEFAULT_PLATFORM) -> Inventory:
    location = f"docker-archive:{path}"
    try:
        tar = tarfile.open(Path(path).expanduser(), mode="r:")  # noqa: SIM115 (closed below)
    except (OSError, tarfile.TarError) as exc:
        raise InventoryError(location, f"resolve manifest: not a readable tar archive: {exc}") from None
    with tar:
        try:
            layers, digest, found = resolve_docker_archive(tar, platform, location)
        except ImageInputError as exc:
            raise InventoryError(location, f"resolve manifest: {exc}") from None
        return _read(location, layers, digest, found)


def read_image_spec(
    spec: str, client: httpx.Client | None, env: Mapping[str, str], platform: str = DEFAULT_PLATFORM
) -> Inventory:
    """Any of the three forms; a registry needs `client`."""
    if spec.startswith("image:"):
        if client is None:
            raise InventoryError(spec, "reading from a registry needs an HTTP client")
        return read_registry_image(spec[len("image:") :], client, Credentials.from_env(env), platform)
    if spec.startswith("oci:"):
        return read_oci_layout(spec[len("oci:") :], platform)
    if spec.startswith("docker-archive:"):
        return read_docker_archive(spec[len("docker-archive:") :], platform)
    raise InventoryError(spec, "expected image:REF, oci:DIR[:REF] or docker-archive:FILE")
