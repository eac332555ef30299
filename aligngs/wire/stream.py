"""The result stream (section 7): ``result``, then per part ``part`` + its ``chunk``s, then ``done``.

``chunk_ranges`` / ``encode_result_stream`` produce it (no copy of array bytes: frames are memoryview slices), and
``ResultStream`` is the one state machine that reassembles it on the receiving side (the reference client and the
Blender add-on both feed it). Every inconsistency raises ``ProtocolError('malformed' | 'bad_frames')``.
"""
from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np

from .arrays import ArrayDesc, array_bytes, array_from_frame, describe_array, parse_array_desc
from .constants import CHUNK_BYTES
from .errors import ProtocolError
from .header import encode_header, message, short
from .results import ResultPart

MAX_PARTS = 1 << 20


def chunk_ranges(total: int, chunk_bytes: int = CHUNK_BYTES) -> list[tuple[int, int]]:
    """[(offset, nbytes)] covering ``total`` bytes in pieces of at most ``chunk_bytes``."""
    if total <= 0:
        return [(0, 0)]
    return [(o, min(chunk_bytes, total - o)) for o in range(0, total, chunk_bytes)]


def n_chunks(total: int, chunk_bytes: int = CHUNK_BYTES) -> int:
    return max(1, -(-total // chunk_bytes))


def encode_result_stream(job: str, re_: int | None, parts: Sequence[ResultPart], *, scene: str, up: list[float],
                         version: int, chunk_bytes: int = CHUNK_BYTES) -> Iterator[list]:
    """The messages of one result stream up to (not including) ``done``, each a list of frames (header first).

    Arrays must already be wire arrays (``to_wire_array``) and metas JSON-safe."""
    n = len(parts)
    nbytes = sum(int(a.nbytes) for p in parts for a in p.arrays.values())
    yield [encode_header(message("result", re_, job=job, scene=scene, up=up, version=version, parts=n,
                                 nbytes=nbytes, chunk_bytes=chunk_bytes))]
    for i, part in enumerate(parts):
        descs, inline, chunked = [], [], []
        for name, arr in part.arrays.items():
            if arr.nbytes <= chunk_bytes:
                inline.append(array_bytes(arr))
                descs.append(describe_array(name, arr, len(inline), chunks=0))
            else:
                descs.append(describe_array(name, arr, None, chunks=n_chunks(arr.nbytes, chunk_bytes)))
                chunked.append((name, arr))
        header = message("part", re_, job=job, index=i, count=n, name=part.name, kind=part.kind, meta=part.meta,
                         arrays=descs)
        yield [encode_header(header), *inline]
        for name, arr in chunked:
            buf = array_bytes(arr)
            ranges = chunk_ranges(arr.nbytes, chunk_bytes)
            for j, (off, nb) in enumerate(ranges):
                h = message("chunk", re_, job=job, part=i, array=name, index=j, count=len(ranges), offset=off,
                            nbytes=nb, total=int(arr.nbytes))
                yield [encode_header(h), buf[off:off + nb]]


class _Pending:
    """A chunked array being filled."""

    def __init__(self, desc: ArrayDesc):
        self.desc = desc
        self.buf = bytearray(desc.nbytes)
        self.received = 0
        self.next_chunk = 0


def _int(h: dict, key: str) -> Any:
    v = h.get(key)
    return v if isinstance(v, int) and not isinstance(v, bool) else None


class ResultStream:
    """Reassembles one result stream. ``feed(header, frames)`` takes each message (``frames`` = the binary frames
    1..n, as bytes / memoryviews) and returns the part it completed, or None.

    After ``result``: ``header`` (that message), ``n_parts``, ``nbytes``, ``manifest`` ({version, scene, up,
    parts: [{name, kind, meta}]}, a part listed as soon as its ``part`` message arrives). Always: ``received``
    (array bytes so far), ``parts`` (completed parts in order, arrays in the order the part lists them),
    ``finished`` and ``done`` (the ``done`` header) once it has arrived."""

    def __init__(self, job: str | None = None):
        self.job = job
        self.header: dict | None = None
        self.n_parts: int | None = None
        self.nbytes = 0
        self.received = 0
        self.manifest: dict = {}
        self.parts: list[ResultPart] = []
        self.done: dict | None = None
        self._part: ResultPart | None = None
        self._order: list[str] = []
        self._pending: list[_Pending] = []

    @property
    def finished(self) -> bool:
        return self.done is not None

    @property
    def busy(self) -> bool:
        """A part has started and not all of its arrays have arrived."""
        return self._part is not None

    def _fail(self, msg: str, code: str = "malformed"):
        raise ProtocolError(code, f"result stream of job {self.job}: {msg}")

    def feed(self, header: dict, frames: Sequence = ()) -> ResultPart | None:
        """Consume one message of the stream (ProtocolError when it does not fit)."""
        t = header.get("type")
        if self.finished:
            self._fail(f"{short(t)} after done")
        try:
            if t == "result":
                return self._on_result(header)
            if t == "part":
                return self._on_part(header, frames)
            if t == "chunk":
                return self._on_chunk(header, frames)
            if t == "done":
                return self._on_done(header)
        except ProtocolError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            self._fail(f"bad {short(t)} message: {e}")
        self._fail(f"{short(t)} is not a result stream message")

    def _on_result(self, h: dict) -> None:
        n = _int(h, "parts")
        if self.header is not None:
            self._fail("a second 'result' message")
        if n is None or not 0 <= n <= MAX_PARTS:
            self._fail(f"'result' without a valid part count ({short(h.get('parts'))})")
        self.header, self.n_parts = h, n
        self.nbytes = int(_int(h, "nbytes") or 0)
        self.manifest = {"version": h.get("version", 1), "scene": h.get("scene") or "result",
                         "up": h.get("up") or [0.0, 0.0, 1.0], "parts": []}
        return None

    def _on_part(self, h: dict, frames: Sequence) -> ResultPart | None:
        if self.n_parts is None or self._part is not None:
            self._fail(f"unexpected part {short(h.get('index'))} "
                       f"({'before result' if self.n_parts is None else 'the previous part is incomplete'})")
        if _int(h, "index") != len(self.parts) or len(self.parts) >= self.n_parts:
            self._fail(f"unexpected part {short(h.get('index'))} (expected {len(self.parts)} of {self.n_parts})")
        name, kind, meta = h.get("name"), h.get("kind"), h.get("meta", {})
        if not isinstance(name, str) or not isinstance(kind, str) or not isinstance(meta, dict):
            self._fail("a part needs a string name and kind and an object meta")
        descs = h.get("arrays", [])
        if not isinstance(descs, list):
            self._fail("part arrays must be a list")
        arrays = {}
        for i, raw in enumerate(descs):
            d = parse_array_desc(raw, f"arrays[{i}]", n_frames=len(frames), allow_chunked=True)
            if d.name in arrays or any(p.desc.name == d.name for p in self._pending):
                self._fail(f"array {d.name!r} listed twice")
            if d.frame is not None:
                arrays[d.name] = array_from_frame(d, frames[d.frame - 1])
                self.received += d.nbytes
            else:
                self._pending.append(_Pending(d))
        self._order = [str(a["name"]) for a in descs]
        self._part = ResultPart(name, kind, arrays, meta)
        self.manifest["parts"].append({"name": name, "kind": kind, "meta": meta})
        return self._maybe_close_part()

    def _on_chunk(self, h: dict, frames: Sequence) -> ResultPart | None:
        if self._part is None or not self._pending or _int(h, "part") != len(self.parts):
            self._fail(f"unexpected chunk for part {short(h.get('part'))}")
        p = self._pending[0]
        d = p.desc
        if h.get("array") != d.name or _int(h, "index") != p.next_chunk or _int(h, "total") != d.nbytes:
            self._fail(f"unexpected chunk {short(h.get('array'))}#{short(h.get('index'))} "
                       f"(expected {d.name!r}#{p.next_chunk} of {d.nbytes} bytes)")
        if len(frames) != 1:
            self._fail("a chunk must carry exactly one frame", "bad_frames")
        data = memoryview(frames[0]).cast("B")
        off, nb = _int(h, "offset"), data.nbytes
        if off != p.received or off + nb > d.nbytes or _int(h, "nbytes") != nb:
            self._fail(f"chunk of {d.name!r} at offset {short(h.get('offset'))} with {nb} bytes does not fit", "bad_frames")
        p.buf[off:off + nb] = data
        p.received += nb
        p.next_chunk += 1
        self.received += nb
        if p.next_chunk == d.chunks:
            if p.received != d.nbytes:
                self._fail(f"array {d.name!r}: {p.received} of {d.nbytes} bytes after the last chunk", "bad_frames")
            self._part.arrays[d.name] = np.frombuffer(p.buf, dtype=d.dtype).reshape(d.shape)
            self._pending.pop(0)
            return self._maybe_close_part()
        if p.received >= d.nbytes:
            self._fail(f"array {d.name!r}: all {d.nbytes} bytes arrived before the last of {d.chunks} chunks", "bad_frames")
        return None

    def _on_done(self, h: dict) -> None:
        if self._part is not None or self.n_parts != len(self.parts):
            self._fail(f"done before all parts arrived ({len(self.parts)} of {self.n_parts})")
        self.done = h
        return None

    def _maybe_close_part(self) -> ResultPart | None:
        if self._pending or self._part is None:
            return None
        part, self._part = self._part, None
        part.arrays = {k: part.arrays[k] for k in self._order if k in part.arrays}
        self.parts.append(part)
        return part
