"""Image references, manifest media types and platform selection (pure logic, no I/O)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
ACCEPT = ", ".join((*INDEX_TYPES, *MANIFEST_TYPES))
DEFAULT_PLATFORM = "linux/amd64"
_REFERENCE = re.compile(
    r"^(?P<name>[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}))?$"
)


class ImageInputError(ValueError):
    """A reference, manifest or platform that cannot be used."""


@dataclass(frozen=True)
class ImageRef:
    registry: str
    """host[:port]"""
    repository: str
    tag: str | None
    digest: str | None

    @property
    def reference(self) -> str:
        """What the manifest is fetched by: the digest when given, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        out = f"{self.registry}/{self.repository}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out

    @property
    def plain_http(self) -> bool:
        """Loopback registries speak plain HTTP (as Docker treats them as insecure by default)."""
        host = self.registry.rsplit(":", 1)[0] if not self.registry.startswith("[") else self.registry
        return host in ("localhost", "127.0.0.1", "[::1]") or host.startswith("127.")


def parse_reference(text: str) -> ImageRef:
    """`registry[:port]/repository[:tag][@digest]`. The registry is always named: mlmon guesses no
    default host, so a reference reads the same on every machine and reaches only what it names."""
    text = text.strip()
    first, _, rest = text.partition("/")
    if not (rest and ("." in first or ":" in first or first == "localhost")):
        raise ImageInputError(
            f"{text!r} names no registry; expected registry[:port]/repository[:tag][@sha256:digest]"
            " (e.g. registry.example.com/team/model:1.2)"
        )
    registry, remainder = first, rest
    found = _REFERENCE.match(remainder)
    if not registry or not found:
        raise ImageInputError(
            f"{text!r} is not an image reference; expected registry[:port]/repository[:tag][@sha256:digest]"
        )
    tag, digest = found.group("tag"), found.group("digest")
    return ImageRef(registry, found.group("name"), tag if tag or digest else "latest", digest)


def parse_platform(text: str) -> tuple[str, str, str | None]:
    parts = text.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ImageInputError(f"platform {text!r}: expected os/architecture[/variant], e.g. linux/amd64")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def _is_attestation(entry: Mapping[str, Any]) -> bool:
    annotations = entry.get("annotations") or {}
    platform = entry.get("platform") or {}
    return annotations.get("vnd.docker.reference.type") == "attestation-manifest" or (
        platform.get("os"),
        platform.get("architecture"),
    ) == ("unknown", "unknown")


def choose_platform(index: Mapping[str, Any], platform: str, where: str) -> Mapping[str, Any]:
    """The first index entry for the platform (attestations skipped)."""
    wanted_os, wanted_arch, wanted_variant = parse_platform(platform)
    entries = index.get("manifests")
    if not isinstance(entries, list):
        raise ImageInputError(f"{where}: the image index has no `manifests` list")
    offered: list[str] = []
    for entry in entries:
        if not isinstance(entry, Mapping) or _is_attestation(entry):
            continue
        found = entry.get("platform") or {}
        offered.append(
            "/".join(str(v) for v in (found.get("os"), found.get("architecture"), found.get("variant")) if v)
        )
        same = found.get("os") == wanted_os and found.get("architecture") == wanted_arch
        if same and (wanted_variant is None or found.get("variant") == wanted_variant):
            return entry
    raise ImageInputError(
        f"{where}: the image index has no {platform} manifest (offered: {', '.join(offered) or 'none'})"
    )


@dataclass(frozen=True)
class LayerRef:
    digest: str
    media_type: str
    size: int | None


def layers_of(manifest: Mapping[str, Any], where: str) -> list[LayerRef]:
    layers = manifest.get("layers")
    if not isinstance(layers, list):
        raise ImageInputError(f"{where}: the manifest has no `layers` list")
    out: list[LayerRef] = []
    for index, layer in enumerate(layers):
        if not isinstance(layer, Mapping) or not isinstance(layer.get("digest"), str):
            raise ImageInputError(f"{where}: layers[{index}] has no digest")
        size = layer.get("size")
        out.append(LayerRef(layer["digest"], str(layer.get("mediaType", "")), size if isinstance(size, int) else None))
    return out


def is_index(doc: Mapping[str, Any], content_type: str | None = None) -> bool:
    media = content_type or doc.get("mediaType") or ""
    return media in INDEX_TYPES or ("manifests" in doc and "layers" not in doc)


def platform_of(config: Mapping[str, Any]) -> str | None:
    os_name, arch, variant = config.get("os"), config.get("architecture"), config.get("variant")
    if not os_name or not arch:
        return None
    return "/".join(str(v) for v in (os_name, arch, variant) if v)


def describe(values: Sequence[str]) -> str:
    return ", ".join(values)
