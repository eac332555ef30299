"""Unit checks of the backend pieces without sockets: streaming layout + reassembly, store, settings, devices."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from aligngs.wire import ResultPart, read_parts, write_parts
from backend.client import Message, ResultAssembler
from backend.devices import make_slots
from backend.jobs import JobRecord, JobStore
from backend.protocol import ProtocolError, chunk_ranges, decode_json_object, json_safe, to_wire_array
from backend.security import SecurityError, check_bind_policy, is_loopback
from backend.settings import resolve_settings
from backend.streaming import is_3dgs_ply, load_result, stream_messages
from backend.worker import load_runner, overall_fraction, shrink_preview


def test_chunk_ranges_cover_exactly():
    assert chunk_ranges(10, 4) == [(0, 4), (4, 4), (8, 2)]
    assert chunk_ranges(8, 4) == [(0, 4), (4, 4)]
    assert chunk_ranges(0, 4) == [(0, 0)]
    for total in (1, 7, 4096, 10_001):
        r = chunk_ranges(total, 1000)
        assert sum(n for _, n in r) == total and all(o == i * 1000 for i, (o, _) in enumerate(r))


def test_json_safe():
    got = json_safe({"a": np.float32(1.5), "b": [np.int64(3), float("inf"), (1, 2)], 3: np.arange(2), "p": Path("/x"), "n": np.bool_(True)})
    assert got == {"a": 1.5, "b": [3, None, [1, 2]], "3": [0, 1], "p": "/x", "n": True}
    json.dumps(got, allow_nan=False)


def test_to_wire_array_little_endian():
    big = np.arange(5, dtype=">i4")
    w = to_wire_array(big)
    assert w.dtype.byteorder in ("<", "=") and w.tobytes() == np.arange(5, dtype="<i4").tobytes()
    assert to_wire_array(np.array(7, np.int32)).shape == ()
    f = np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))
    assert to_wire_array(f).flags.c_contiguous
    with pytest.raises(ValueError):
        to_wire_array(np.array(["x"]))


def stream_to_parts(out: Path, chunk_bytes: int):
    result = load_result(out)
    asm = ResultAssembler("job1")
    msgs = list(stream_messages("job1", 9, result, chunk_bytes))
    done = False
    for frames in msgs:
        h = decode_json_object(frames[0])
        assert h["re"] == 9 and h["job"] == "job1" and h["v"] == 1
        done = asm.feed(Message(h, [bytes(f) for f in frames[1:]]))
    assert not done
    assert asm.feed(Message({"type": "done", "job": "job1"}, []))
    return msgs, asm.result


def test_stream_layout_and_reassembly(tmp_path):
    rng = np.random.default_rng(0)
    parts = [
        ResultPart("points", "points", {"positions": rng.normal(size=(1000, 3)).astype(np.float32),
                                          "colors": rng.integers(0, 256, (1000, 3), dtype=np.uint8)}),
        ResultPart("big_endian", "extra", {"v": np.arange(300, dtype=">f8"), "empty": np.zeros((0, 4), np.int16),
                                            "scalar": np.array(3.5)}, {"k": [1, 2]}),
    ]
    write_parts(tmp_path / "result", parts, scene="s", up=(0, 1, 0))
    (tmp_path / "gaussians.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 1\nproperty float f_dc_0\nend_header\n" + bytes(4))
    (tmp_path / "mesh.ply").write_bytes(b"ply\nformat ascii 1.0\nend_header\n")
    assert is_3dgs_ply(tmp_path / "gaussians.ply") and not is_3dgs_ply(tmp_path / "mesh.ply")
    msgs, res = stream_to_parts(tmp_path, chunk_bytes=4000)
    heads = [decode_json_object(m[0]) for m in msgs]
    assert [h["type"] for h in heads][:2] == ["result", "part"]
    assert heads[0]["parts"] == 3 and heads[0]["up"] == [0.0, 1.0, 0.0] and heads[0]["scene"] == "s"
    pos = [h for h in heads if h["type"] == "chunk" and h["array"] == "positions"]
    assert [(h["offset"], h["nbytes"], h["index"], h["count"]) for h in pos] == [(i * 4000, 4000, i, 3) for i in range(3)]
    desc = {d["name"]: d for d in heads[1]["arrays"]}
    assert desc["positions"]["frame"] is None and desc["positions"]["chunks"] == 3
    assert desc["colors"]["frame"] == 1 and desc["colors"]["chunks"] == 0 and desc["colors"]["nbytes"] == 3000
    _, disk = read_parts(tmp_path / "result")  # (write_parts stores the 0-d "scalar" as shape (1,))
    for g, d in zip(res.parts, disk):
        assert list(g.arrays) == list(d.arrays) and g.meta == d.meta
        for k, a in d.arrays.items():
            assert g.arrays[k].shape == a.shape and np.array_equal(g.arrays[k], a)
            assert g.arrays[k].dtype == a.dtype.newbyteorder("<") and g.arrays[k].tobytes() == a.astype(a.dtype.newbyteorder("<")).tobytes()
    assert res.parts[2].name == "gaussians.ply" and res.parts[2].arrays["data"].tobytes() == (tmp_path / "gaussians.ply").read_bytes()


def test_assembler_rejects_inconsistent_streams(tmp_path):
    write_parts(tmp_path / "result", [ResultPart("p", "points", {"x": np.arange(3000, dtype=np.uint8)})], scene="s")
    msgs = list(stream_messages("j", 1, load_result(tmp_path), 1000))
    asm = ResultAssembler("j")
    asm.feed(Message(decode_json_object(msgs[0][0]), []))
    asm.feed(Message(decode_json_object(msgs[1][0]), []))
    h = decode_json_object(msgs[2][0])
    with pytest.raises(ProtocolError):
        asm.feed(Message(dict(h, offset=2500), [bytes(msgs[2][1])]))  # runs past the end
    with pytest.raises(ProtocolError):
        asm.feed(Message(dict(h, array="y"), [bytes(msgs[2][1])]))
    with pytest.raises(ProtocolError):
        asm.feed(Message({"type": "done"}, []))  # before the chunks


def test_job_store_round_trip_and_corrupt_records(tmp_path):
    store = JobStore(tmp_path / "jobs")
    assert stat.S_IMODE(os.stat(store.root).st_mode) == 0o700
    rec = JobRecord(job=store.new_id(), name="a", settings={"x": 1}, n_inputs=3)
    store.create(rec)
    rec.state, rec.progress = "running", {"stage": "train"}
    store.save(rec)
    bad = store.root / ("B" * 22)
    bad.mkdir()
    (bad / "state.json").write_text("{not json")
    (store.root / ("C" * 22)).mkdir()  # no state.json
    (store.root / "..hidden").mkdir()
    loaded = store.load_all()
    assert [r.job for r in loaded] == [rec.job] and loaded[0].progress == {"stage": "train"}
    assert json.loads((store.dir(rec.job) / "settings.json").read_text()) == {"x": 1}
    assert not list(store.dir(rec.job).glob("*.tmp*"))
    with pytest.raises(ValueError):
        store.dir("../x")


def test_settings_presets_and_config():
    cfg = resolve_settings({"preset": "fast", "overrides": {"train": {"iterations": 12}}}, cuda_available=False)
    assert cfg.train.iterations == 12 and cfg.data.resolution == 160 and cfg.train.sh_degree == 1
    cfg = resolve_settings({}, cuda_available=False)
    assert cfg.data.resolution == 320  # balanced
    cfg = resolve_settings({"config": {"train": {"background": [1, 1, 1]}, "data": {"resolution": None}}}, cuda_available=True)
    assert cfg.train.background == (1.0, 1.0, 1.0) and cfg.data.resolution is None and cfg.train.iterations == 7000
    assert resolve_settings({"overrides": {"train": {"device": "cuda"}}}, cuda_available=True).train.device == "cuda"


@pytest.mark.parametrize("endpoint, loop", [
    ("tcp://127.0.0.1:5555", True), ("tcp://127.0.0.2:*", True), ("tcp://localhost:1", True), ("tcp://[::1]:5", True),
    ("ipc:///tmp/x", True), ("tcp://0.0.0.0:5555", False), ("tcp://*:5555", False), ("tcp://eth0:5555", False),
    ("tcp://10.0.0.1:5", False), ("tcp://127.0.0.1;10.0.0.1:5", False), ("udp://127.0.0.1:5", False),
])
def test_is_loopback(endpoint, loop):
    assert is_loopback(endpoint) is loop


def test_bind_policy():
    check_bind_policy("tcp://127.0.0.1:1", curve=False, insecure=False)
    check_bind_policy("tcp://0.0.0.0:1", curve=True, insecure=False)
    check_bind_policy("tcp://0.0.0.0:1", curve=False, insecure=True)
    with pytest.raises(SecurityError):
        check_bind_policy("tcp://0.0.0.0:1", curve=False, insecure=False)


@pytest.fixture
def fake_smi(tmp_path, monkeypatch):
    exe = tmp_path / "nvidia-smi"
    exe.write_text("#!/bin/sh\necho '0, GPU-aaaa, NVIDIA H100'\necho '1, GPU-bbbb, NVIDIA H100'\necho '2, GPU-cccc, NVIDIA A10'\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_slots_from_nvidia_smi(fake_smi, monkeypatch):
    slots = make_slots("auto")
    assert [(s.device, s.cuda_visible, s.name) for s in slots] == [
        ("cuda:0", "GPU-aaaa", "NVIDIA H100"), ("cuda:1", "GPU-bbbb", "NVIDIA H100"), ("cuda:2", "GPU-cccc", "NVIDIA A10")]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    assert [s.cuda_visible for s in make_slots("auto")] == ["GPU-cccc", "GPU-aaaa"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert [s.device for s in make_slots("auto")] == ["cpu"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    assert [s.device for s in make_slots("auto", workers=2)] == ["cuda:0", "cuda:0"]
    assert [s.device for s in make_slots("cpu", workers=2)] == ["cpu", "cpu"]
    with pytest.raises(ValueError):
        make_slots("tpu")


def test_worker_helpers(tmp_path):
    f = tmp_path / "r.py"
    f.write_text("def go(*a, **k):\n    return 42\n")
    assert load_runner(f"{f}:go")() == 42
    assert load_runner("json:dumps") is json.dumps
    for bad in ("nocolon", f"{f}:missing", "json:"):
        with pytest.raises(ValueError):
            load_runner(bad)
    assert overall_fraction("load", 0.0) == 0.0 and overall_fraction("export", 1.0) == pytest.approx(1.0)
    assert overall_fraction("train", 0.5) == pytest.approx(0.22 + 0.3)
    p = shrink_preview(np.ones((600, 300, 3), np.float32) * 0.5)
    assert p.dtype == np.uint8 and max(p.shape[:2]) <= 256 and p[0, 0, 0] == 127
    assert shrink_preview(np.zeros((5, 5))) is None


def test_server_process_never_imports_torch():
    import subprocess
    import sys

    code = ("import sys, backend.serve, backend.server as s, backend.devices as d; s.known_models(); d.make_slots('auto');"
            "print(sorted(m for m in ('torch', 'transformers', 'open3d', 'bpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
