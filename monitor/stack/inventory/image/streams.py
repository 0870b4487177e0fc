"""Layer byte streams: digest checking while reading, and decompression chosen by content.

A layer's media type says gzip, zstd or plain tar, but the bytes decide: a layer that is none of
the three fails naming the layer, before tar sees garbage.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from collections.abc import Callable, Iterator
from typing import IO, Any

import zstandard

from monitor.stack.inventory.image.layers import LayerError

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CHUNK = 1 << 20


class DigestReader(io.RawIOBase):
    """A read-only stream over chunks that checks the sha256 digest once the end is reached."""

    def __init__(self, chunks: Iterator[bytes], digest: str | None, name: str, on_close: Callable[[], None]) -> None:
        self._chunks = chunks
        self._pending = b""
        self._digest = digest
        self._hash = hashlib.sha256() if digest and digest.startswith("sha256:") else None
        self._name = name
        self._on_close = on_close
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._done:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._done = True
                self._verify()
                break
            if self._hash is not None:
                self._hash.update(chunk)
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def _verify(self) -> None:
        if self._hash is not None and self._digest and f"sha256:{self._hash.hexdigest()}" != self._digest:
            raise LayerError(f"{self._name}: content does not match its digest {self._digest}")

    def drain(self) -> None:
        """Read to the end, so the digest is checked even when tar stopped early."""
        while self.read(CHUNK):
            pass

    def close(self) -> None:
        if not self.closed:
            self._on_close()
        super().close()


def file_chunks(handle: IO[bytes]) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK):
        yield chunk


class LayerStream:
    """The uncompressed tar stream of a layer, and the raw stream under it (for the digest)."""

    def __init__(self, raw: DigestReader, name: str, media_type: str) -> None:
        self.raw = raw
        self.name = name
        buffered = io.BufferedReader(raw, CHUNK)
        magic = buffered.peek(4)[:4]
        self.stream: Any
        if magic[:2] == GZIP_MAGIC:
            self.stream = gzip.GzipFile(fileobj=buffered, mode="rb")
        elif magic == ZSTD_MAGIC:
            self.stream = zstandard.ZstdDecompressor().stream_reader(buffered, read_size=CHUNK)
        elif _is_tar(buffered) and not media_type.endswith(("+gzip", ".gzip", "+zstd")):
            self.stream = buffered
        else:
            raise LayerError(
                f"{name}: expected a gzip, zstd or tar layer (media type {media_type or 'not given'}), "
                f"found data starting {magic.hex() or 'with nothing'}"
            )

    def read(self, size: int = -1, /) -> bytes:
        try:
            data: bytes = self.stream.read(size)
            return data
        except (OSError, EOFError, zstandard.ZstdError) as exc:
            raise LayerError(f"{self.name}: cannot decompress: {exc}") from None

    def finish(self) -> None:
        while self.read(CHUNK):
            pass
        self.raw.drain()

    def close(self) -> None:
        self.stream.close()
        self.raw.close()


def _is_tar(buffered: io.BufferedReader[DigestReader]) -> bool:
    head = buffered.peek(512)
    return len(head) >= 262 and head[257:262] == b"ustar" or head[:512] == b"\0" * 512
