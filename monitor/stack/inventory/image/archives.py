"""Images on disk: an OCI image layout directory (`oci:DIR[:REF]`) and a `docker save` tarball
(`docker-archive:FILE`, either the classic `manifest.json` form or the OCI layout Docker 25+
writes). Blobs are read straight from the directory or from inside the tarball, never extracted."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from monitor.stack.inventory.image.layers import LayerHandle
from monitor.stack.inventory.image.manifests import (
    ImageInputError,
    LayerRef,
    choose_platform,
    is_index,
    layers_of,
    platform_of,
)
from monitor.stack.inventory.image.streams import DigestReader, LayerStream, file_chunks

Opener = Callable[[str], IO[bytes]]
"""Opens a path inside the layout (a directory or a tarball)."""
MAX_DOC_BYTES = 4 * 1024 * 1024
REF_ANNOTATION = "org.opencontainers.image.ref.name"


@dataclass
class BlobLayer:
    opener: Opener
    path: str
    ref: LayerRef

    @property
    def name(self) -> str:
        return f"layer {self.ref.digest}"

    def open(self) -> LayerHandle:
        try:
            handle = self.opener(self.path)
        except (OSError, KeyError) as exc:
            raise ImageInputError(f"{self.name}: cannot open {self.path}: {exc}") from None
        digest = self.ref.digest if self.ref.digest.startswith("sha256:") else None
        raw = DigestReader(file_chunks(handle), digest, self.name, handle.close)
        return LayerStream(raw, self.name, self.ref.media_type)


def _blob_path(digest: str) -> str:
    algorithm, _, value = digest.partition(":")
    if not algorithm or not value or "/" in value or ".." in value:
        raise ImageInputError(f"{digest!r} is not a digest")
    return f"blobs/{algorithm}/{value}"


def _json(opener: Opener, path: str, where: str) -> Any:
    try:
        with opener(path) as handle:
            data = handle.read(MAX_DOC_BYTES + 1)
    except (OSError, KeyError):
        raise ImageInputError(f"{where}: {path} is missing") from None
    if len(data) > MAX_DOC_BYTES:
        raise ImageInputError(f"{where}: {path} is larger than {MAX_DOC_BYTES} bytes")
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ImageInputError(f"{where}: {path} is not JSON: {exc}") from None


def _select(index: Mapping[str, Any], tag: str | None, platform: str, where: str) -> Mapping[str, Any]:
    entries = [e for e in index.get("manifests") or [] if isinstance(e, Mapping)]
    if tag is not None:
        named = [e for e in entries if (e.get("annotations") or {}).get(REF_ANNOTATION) == tag]
        if not named:
            names = sorted({str((e.get("annotations") or {}).get(REF_ANNOTATION)) for e in entries})
            raise ImageInputError(f"{where}: no image named {tag!r} in index.json (names: {', '.join(names)})")
        entries = named
    if len(entries) == 1 and not is_index(entries[0]) and "platform" not in entries[0]:
        return entries[0]
    return choose_platform({"manifests": entries}, platform, where)


def resolve_layout(
    opener: Opener, tag: str | None, platform: str, where: str
) -> tuple[list[BlobLayer], str, str | None]:
    """The layers of an OCI layout's image, its manifest digest and platform."""
    layout = _json(opener, "oci-layout", where)
    if not isinstance(layout, Mapping) or "imageLayoutVersion" not in layout:
        raise ImageInputError(f"{where}: oci-layout has no imageLayoutVersion")
    index = _json(opener, "index.json", where)
    entry = _select(index, tag, platform, where)
    digest = str(entry.get("digest"))
    manifest = _json(opener, _blob_path(digest), where)
    while is_index(manifest, str(entry.get("mediaType", ""))):
        entry = choose_platform(manifest, platform, where)
        digest = str(entry.get("digest"))
        manifest = _json(opener, _blob_path(digest), where)
    found_platform = None
    config = manifest.get("config")
    if isinstance(config, Mapping) and isinstance(config.get("digest"), str):
        doc = _json(opener, _blob_path(config["digest"]), where)
        found_platform = platform_of(doc) if isinstance(doc, Mapping) else None
    layers = [BlobLayer(opener, _blob_path(r.digest), r) for r in layers_of(manifest, where)]
    return layers, digest, found_platform


def directory_opener(root: Path) -> Opener:
    def opener(path: str) -> IO[bytes]:
        target = (root / path).resolve()
        if root.resolve() not in target.parents:
            raise KeyError(path)
        return target.open("rb")

    return opener


def tar_opener(tar: tarfile.TarFile) -> Opener:
    def opener(path: str) -> IO[bytes]:
        member = tar.getmember(path.lstrip("./") if path.startswith("./") else path)
        handle = tar.extractfile(member)
        if handle is None:
            raise KeyError(path)
        return handle

    return opener


def resolve_docker_archive(tar: tarfile.TarFile, platform: str, where: str) -> tuple[list[BlobLayer], str, str | None]:
    names = set(tar.getnames())
    opener = tar_opener(tar)
    if "manifest.json" not in names:
        return resolve_layout(opener, None, platform, where)
    manifest = _json(opener, "manifest.json", where)
    if not isinstance(manifest, list) or not manifest or not isinstance(manifest[0], Mapping):
        raise ImageInputError(f"{where}: manifest.json is not a list of images")
    if len(manifest) > 1:
        tags = [", ".join(m.get("RepoTags") or []) for m in manifest if isinstance(m, Mapping)]
        raise ImageInputError(f"{where}: the archive holds {len(manifest)} images ({'; '.join(tags)}); save one")
    image = manifest[0]
    paths = image.get("Layers")
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise ImageInputError(f"{where}: manifest.json has no Layers list")
    found_platform = None
    config_path = image.get("Config")
    if isinstance(config_path, str):
        config = _json(opener, config_path, where)
        found_platform = platform_of(config) if isinstance(config, Mapping) else None
    # classic archives name layers by path only; blob paths carry the digest
    layers = [BlobLayer(opener, p, LayerRef(_digest_of(p), "", None)) for p in paths]
    return layers, str(config_path or ""), found_platform


def _digest_of(path: str) -> str:
    parts = path.split("/")
    if len(parts) == 3 and parts[0] == "blobs":
        return f"{parts[1]}:{parts[2]}"
    return path
