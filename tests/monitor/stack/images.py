"""Images for the image tests: OCI layouts written here (layers as tar streams, gzip or zstd, with
whiteouts), a real `docker-registry` started on 127.0.0.1, and `skopeo` pushing layouts into it."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import subprocess
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import zstandard

from tests.support.peers import free_port, require_binary, stop_process, wait_until

SITE = "usr/local/lib/python3.11/site-packages"
Entry = tuple[str, bytes | None]
"""(path, content); None makes a directory."""


def metadata(name: str, version: str, extra: str = "") -> bytes:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{extra}\nThe long description.\n".encode()


def dist(name: str, version: str, site: str = SITE) -> list[Entry]:
    folder = f"{site}/{name.replace('-', '_')}-{version}.dist-info"
    return [
        (f"{folder}/METADATA", metadata(name, version)),
        (f"{folder}/RECORD", b""),
        (f"{site}/{name.replace('-', '_')}/__init__.py", b"# code\n"),
    ]


def whiteout(path: str) -> Entry:
    parent, _, name = path.rpartition("/")
    return (f"{parent}/.wh.{name}" if parent else f".wh.{name}", b"")


def opaque(directory: str) -> Entry:
    return (f"{directory}/.wh..wh..opq", b"")


def layer_tar(entries: Sequence[Entry]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        seen: set[str] = set()
        for path, content in entries:
            parts = path.split("/")
            for depth in range(1, len(parts)):
                directory = "/".join(parts[:depth])
                if directory not in seen:
                    seen.add(directory)
                    info = tarfile.TarInfo(directory)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            info = tarfile.TarInfo(path)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
                continue
            info.size, info.mode = len(content), 0o644
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


MEDIA = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
    "tar": "application/vnd.oci.image.layer.v1.tar",
}


def compress(data: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(data, mtime=0)
    if how == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


@dataclass
class Layout:
    path: Path
    ref: str

    @property
    def spec(self) -> str:
        return f"{self.path}:{self.ref}"


def _blob(root: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    target = root / "blobs" / "sha256" / digest
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return f"sha256:{digest}"


def write_layout(
    root: Path,
    layers: Sequence[Sequence[Entry]],
    *,
    ref: str = "latest",
    compression: str = "gzip",
    raw_layers: Sequence[tuple[bytes, str]] = (),
    platform: tuple[str, str] = ("linux", "amd64"),
) -> Layout:
    """An OCI image layout holding one image; `raw_layers` are added as given (bytes, media type)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    descriptors, diff_ids = [], []
    for entries in layers:
        tar = layer_tar(entries)
        diff_ids.append(f"sha256:{hashlib.sha256(tar).hexdigest()}")
        blob = compress(tar, compression)
        descriptors.append({"mediaType": MEDIA[compression], "digest": _blob(root, blob), "size": len(blob)})
    for data, media in raw_layers:
        diff_ids.append(f"sha256:{hashlib.sha256(data).hexdigest()}")
        descriptors.append({"mediaType": media, "digest": _blob(root, data), "size": len(data)})
    config = json.dumps({
        "architecture": platform[1], "os": platform[0],
        "rootfs": {"type": "layers", "diff_ids": diff_ids}, "config": {},
    }).encode()  # fmt: skip
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _blob(root, config),
                   "size": len(config)},
        "layers": descriptors,
    }).encode()  # fmt: skip
    index = {
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _blob(root, manifest),
            "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": ref},
        }],
    }  # fmt: skip
    (root / "index.json").write_text(json.dumps(index))
    return Layout(root, ref)


def docker_archive(layout: Layout, target: Path) -> Path:
    """A classic `docker save` tarball (manifest.json, uncompressed layer.tar files) of a layout."""
    index = json.loads((layout.path / "index.json").read_text())
    blobs = layout.path / "blobs" / "sha256"
    manifest = json.loads((blobs / index["manifests"][0]["digest"].split(":")[1]).read_bytes())
    with tarfile.open(target, "w") as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        layer_paths = []
        for number, layer in enumerate(manifest["layers"]):
            data = (blobs / layer["digest"].split(":")[1]).read_bytes()
            if layer["mediaType"].endswith("gzip"):
                data = gzip.decompress(data)
            elif layer["mediaType"].endswith("zstd"):
                data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
            add(f"{number:04d}/layer.tar", data)
            layer_paths.append(f"{number:04d}/layer.tar")
        config = (blobs / manifest["config"]["digest"].split(":")[1]).read_bytes()
        add("config.json", config)
        add(
            "manifest.json",
            json.dumps([{"Config": "config.json", "RepoTags": ["svc:1"], "Layers": layer_paths}]).encode(),
        )
    return target


class Registry:
    """Debian's docker-registry on a free 127.0.0.1 port, with its own storage (and htpasswd auth)."""

    def __init__(self, root: Path, auth: bool = False) -> None:
        self.binary = require_binary("docker-registry", "apt-get install docker-registry")
        self.root = root
        self.port = free_port()
        self.auth = auth
        self.password: str | None = None
        self.log = root / "registry.log"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> Registry:
        self.root.mkdir(parents=True, exist_ok=True)
        config = {
            "version": 0.1,
            "log": {"level": "info"},
            "storage": {"filesystem": {"rootdirectory": str(self.root / "data")}, "delete": {"enabled": True}},
            "http": {"addr": self.host},
        }
        if self.auth:
            # the registry creates a missing htpasswd file with user `docker` and logs the password
            config["auth"] = {"htpasswd": {"realm": "mlmon-test", "path": str(self.root / "htpasswd")}}
        (self.root / "config.yml").write_text(json.dumps(config))
        self.handle = self.log.open("wb")
        self.proc = subprocess.Popen([self.binary, "serve", str(self.root / "config.yml")], stdout=self.handle,
                                     stderr=subprocess.STDOUT)  # fmt: skip
        import httpx

        wait_until(lambda: httpx.get(f"http://{self.host}/v2/", timeout=2).status_code in (200, 401), 30,
                   what="docker-registry")  # fmt: skip
        if self.auth:
            wait_until(lambda: self._password() is not None, 10, what="the generated password")
            self.password = self._password()
        return self

    def _password(self) -> str | None:
        found = re.search(r'password[=:]\s*"?([A-Za-z0-9_\-]+)', self.log.read_text(errors="replace"))
        return found.group(1) if found else None

    def __exit__(self, *exc: object) -> None:
        stop_process(self.proc)
        self.handle.close()

    def upload(self, layout: Layout, repo: str, tag: str) -> str:
        """Push a layout byte for byte through the distribution API (skopeo would repair a layer
        whose bytes do not match its media type)."""
        import httpx

        blobs = layout.path / "blobs" / "sha256"
        index = json.loads((layout.path / "index.json").read_text())
        manifest_digest = index["manifests"][0]["digest"]
        manifest = (blobs / manifest_digest.split(":")[1]).read_bytes()
        doc = json.loads(manifest)
        base = f"http://{self.host}/v2/{repo}"
        for descriptor in [doc["config"], *doc["layers"]]:
            data = (blobs / descriptor["digest"].split(":")[1]).read_bytes()
            started = httpx.post(f"{base}/blobs/uploads/", timeout=30)
            assert started.status_code == 202, started.text
            location = started.headers["Location"]
            joiner = "&" if "?" in location else "?"
            done = httpx.put(f"{location}{joiner}digest={descriptor['digest']}", content=data, timeout=30,
                             headers={"Content-Type": "application/octet-stream"})  # fmt: skip
            assert done.status_code == 201, done.text
        put = httpx.put(f"{base}/manifests/{tag}", content=manifest, timeout=30,
                        headers={"Content-Type": doc["mediaType"]})  # fmt: skip
        assert put.status_code == 201, put.text
        return f"{self.host}/{repo}:{tag}"

    def push(self, layout: Layout, repo: str, tag: str, *extra: str) -> str:
        skopeo = require_binary("skopeo", "apt-get install skopeo")
        creds = ["--dest-creds", f"docker:{self.password}"] if self.auth else []
        done = subprocess.run(
            [skopeo, "copy", "--dest-tls-verify=false", *creds, *extra, f"oci:{layout.spec}",
             f"docker://{self.host}/{repo}:{tag}"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return f"{self.host}/{repo}:{tag}"
