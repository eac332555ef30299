"""Hypothesis fuzzing: the decoders only ever raise ProtocolError, and a live server answers every message once."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.client import Client, Message, ResultAssembler
from backend.files import ALLOWED_EXTENSIONS, sanitize_name
from backend.protocol import (
    MAX_SEQ,
    REQUEST_TYPES,
    ProtocolError,
    decode_request,
    parse_array_desc,
)
from backend.settings import resolve_settings

from backend_testlib import launch

json_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=20)
type_names = st.sampled_from(sorted(REQUEST_TYPES)) | st.text(max_size=12)
seqs = st.integers(-5, MAX_SEQ + 5) | json_scalars
config_keys = st.sampled_from(["mode", "data", "train", "mesh", "resolution", "iterations", "lr", "semantics", "device", "x"])
configish = st.recursive(json_scalars, lambda inner: st.dictionaries(config_keys, inner, max_size=4) | st.lists(inner, max_size=3), max_leaves=15)


def mostly(usual: st.SearchStrategy, rare: st.SearchStrategy) -> st.SearchStrategy:
    """``usual`` about 80% of the time (plain ``|`` lets the simpler branch dominate)."""
    return st.integers(0, 9).flatmap(lambda k: usual if k < 8 else rare)


def headers() -> st.SearchStrategy[dict]:
    """Mostly well-formed envelopes (v 1, a known type, a valid seq) with random bodies, some broken ones."""
    return st.fixed_dictionaries(
        {
            "v": mostly(st.just(1), st.sampled_from([2, 0, "1", None, True])),
            "type": st.sampled_from(sorted(REQUEST_TYPES) * 3 + ["nope", ""]),
            "seq": mostly(st.integers(0, 10_000), seqs),
        },
        optional={
            "job": st.text(max_size=30) | st.integers() | st.just("A" * 22),
            "client": json_scalars,
            "preset": st.sampled_from(["fast", "balanced", "paper", "nope"]) | json_scalars,
            "overrides": configish,
            "config": configish,
            "files": st.lists(st.fixed_dictionaries({}, optional={"name": st.sampled_from(["a.jpg", "b.png", "../c.jpg", "t.json", "x.txt"]) | st.text(max_size=20) | json_scalars,
                                                                  "frame": st.integers(-1, 4) | json_scalars,
                                                                  "nbytes": st.integers(-1, 3000) | json_scalars}) | json_scalars, max_size=4) | json_scalars,
            "server_path": st.text(max_size=20) | json_scalars,
            "state": st.text(max_size=10) | st.lists(st.text(max_size=8), max_size=3) | json_scalars,
            "bytes": st.integers(-5, 2**21) | json_scalars,
            "parts": st.lists(st.text(max_size=8), max_size=3) | json_scalars,
            "attach": json_scalars,
        },
    )


def frame0() -> st.SearchStrategy[bytes]:
    well_formed = headers().map(lambda h: json.dumps(h).encode())
    garbage = st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.text(max_size=100).map(lambda t: t.encode("utf-8", "ignore")),
    )
    return mostly(well_formed, garbage)


# binary frames that can never pass an image signature check, so no fuzz submit becomes a real job
blobs = st.binary(max_size=2000).filter(lambda b: not b.startswith((b"\xff\xd8", b"\x89P")))
payload = mostly(st.just([]), st.lists(blobs, max_size=3))


@st.composite
def submits(draw) -> tuple[bytes, list[bytes]]:
    """Submits whose file list matches their frames, so the checks past the frame bookkeeping run too."""
    h = draw(headers())
    h.update(v=1, type="submit", seq=draw(st.integers(0, 1000)))
    h.pop("server_path", None)
    frames = draw(st.lists(blobs, min_size=1, max_size=3))
    names = st.sampled_from(["a.jpg", "b.png", "images/c.jpg", "t.json", "poses.txt", "../x.jpg", ".h.png", "x.exe", "cameras.bin"])
    h["files"] = [{"name": draw(names | st.text(max_size=12)), "frame": i + 1, "nbytes": len(f)} for i, f in enumerate(frames)]
    if draw(st.booleans()):
        h.pop("config", None)
        h["preset"] = draw(st.sampled_from(["fast", "balanced", "paper"]))
    return json.dumps(h).encode(), frames


@settings(max_examples=400, deadline=None)
@given(data=frame0())
def test_decode_request_raises_only_protocol_errors(data):
    try:
        req = decode_request(data)
    except ProtocolError as e:
        assert e.code in {"malformed", "bad_version", "unknown_type", "too_large"}
        return
    assert req.type in REQUEST_TYPES and isinstance(req.seq, int) and 0 <= req.seq < MAX_SEQ


def test_decode_request_limits():
    with pytest.raises(ProtocolError) as e:
        decode_request(b" " * 2000 + b"{}", max_header_bytes=1000)
    assert e.value.code == "too_large"
    with pytest.raises(ProtocolError) as e:
        decode_request(b'{"v":1,"type":"ping","seq":1e400}')
    assert e.value.code == "malformed"
    assert decode_request(b'{"v":1,"type":"ping","seq":3,"future":{"x":1}}').seq == 3


@settings(max_examples=300, deadline=None)
@given(name=st.text(max_size=40) | json_scalars)
def test_sanitize_name_never_escapes(name):
    try:
        out = sanitize_name(name, "files[0].name")
    except ProtocolError as e:
        assert e.code == "invalid_file" and e.field == "files[0].name"
        return
    parts = out.split("/")
    assert all(p and not p.startswith(".") and p not in ("..", ".") for p in parts)
    assert not out.startswith("/") and "\\" not in out and ":" not in out
    assert all(ch.isascii() and (ch.isalnum() or ch in "_.-/") for ch in out)
    assert any(out.lower().endswith(ext) for ext in ALLOWED_EXTENSIONS)


@pytest.mark.parametrize("name, stored", [
    ("IMG 0001 (1).JPG", "IMG_0001__1_.JPG"), ("images/0001.jpg", "images/0001.jpg"), ("a\\b.png", "a/b.png"),
    ("sparse/0/cameras.bin", "sparse/0/cameras.bin"), ("caf\u00e9.jpg", "caf_.jpg"), ("x..jpg", "x..jpg"),
])
def test_sanitize_name_examples(name, stored):
    assert sanitize_name(name, "f") == stored


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=headers())
def test_resolve_settings_raises_only_protocol_errors(h):
    try:
        cfg = resolve_settings(h, cuda_available=False)
    except ProtocolError as e:
        assert e.code in {"invalid_settings", "malformed"}
        assert e.field is not None
        return
    assert cfg.train.iterations >= 1 and cfg.train.device in ("auto", "cpu")


descs = st.fixed_dictionaries({}, optional={
    "name": st.text(max_size=5) | json_scalars, "dtype": st.sampled_from(["float32", "uint8", "object", "<f4", "bool"]) | json_scalars,
    "shape": st.lists(st.integers(-1, 5), max_size=3) | json_scalars, "nbytes": st.integers(-1, 200) | json_scalars,
    "frame": st.integers(-1, 3) | json_scalars, "chunks": st.integers(-1, 3) | json_scalars,
})


@settings(max_examples=300, deadline=None)
@given(d=descs | json_scalars, n_frames=st.integers(0, 3), chunked=st.booleans())
def test_parse_array_desc(d, n_frames, chunked):
    try:
        a = parse_array_desc(d, "a", n_frames=n_frames, allow_chunked=chunked)
    except ProtocolError:
        return
    assert a.nbytes == int(np.prod(a.shape)) * a.dtype.itemsize
    assert (a.frame is None and chunked and a.chunks >= 1) or (a.frame is not None and 1 <= a.frame <= n_frames)


stream_msgs = st.lists(
    st.tuples(
        st.sampled_from(["result", "part", "chunk", "done", "progress"]),
        st.fixed_dictionaries({}, optional={
            "parts": st.integers(-1, 3) | json_scalars, "index": st.integers(-1, 3) | json_scalars,
            "name": st.text(max_size=4) | json_scalars, "kind": st.text(max_size=4) | json_scalars,
            "arrays": st.lists(descs, max_size=3) | json_scalars, "part": st.integers(-1, 2) | json_scalars,
            "array": st.text(max_size=4) | json_scalars, "offset": st.integers(-1, 100) | json_scalars,
            "nbytes": st.integers(-1, 100) | json_scalars, "total": st.integers(-1, 100) | json_scalars,
            "meta": json_values,
        }),
        st.lists(st.binary(max_size=64), max_size=3),
    ),
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(msgs=stream_msgs)
def test_result_assembler_raises_only_protocol_errors(msgs):
    asm = ResultAssembler("job")
    for type_, h, frames in msgs:
        try:
            asm.feed(Message({"type": type_, **h}, frames))
        except ProtocolError:
            return


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    sp = launch(tmp_path_factory.mktemp("fuzz"), "--max-image-mb", "0.5")
    c = Client(sp.endpoint, timeout=10)
    yield sp, c
    c.close()
    sp.stop()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(msg=st.tuples(frame0(), payload) | submits())
def test_live_server_answers_every_message(live, msg):
    sp, c = live
    f0, rest = msg
    c.send_raw([f0, *rest])
    m = c.recv_any(10)
    assert m.header["v"] == 1
    assert m.type in {"error", "welcome", "pong", "jobs"}, m.header  # no fuzz message can name a real job
    try:  # strict JSON, as the protocol requires (Infinity / NaN make the header unreadable)
        h = json.loads(f0, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
        seq = h.get("seq") if isinstance(h, dict) else None
    except (ValueError, RecursionError):
        seq = None
    if isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq < MAX_SEQ:
        assert m.re == seq
    else:
        assert m.re is None
    assert sp.alive()


def test_live_server_still_serves_after_fuzz(live):
    sp, c = live
    seq = c.send("ping")
    m = c.recv_any(10)  # nothing else is pending: the next message is this pong
    assert m.type == "pong" and m.re == seq
    assert sp.alive() and "Traceback" not in sp.log()
