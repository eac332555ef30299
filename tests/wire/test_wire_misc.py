"""Headers, names, JSON, limits and result folders of ``aligngs.wire``; and that it stands alone."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aligngs import wire
from aligngs.wire import (Limits, ProtocolError, ResultFormatError, ResultPart, decode_request, json_safe, read_parts,
                          request, safe_name, sanitize_name, to_jsonable, write_json_atomic, write_parts)

REPO = Path(__file__).resolve().parents[2]


def test_request_header_and_decode():
    h = request("fetch", 7, job="abcdefgh", parts=None, files=False)
    assert h == {"v": 1, "type": "fetch", "seq": 7, "job": "abcdefgh", "files": False}
    r = decode_request(wire.encode_header(h))
    assert (r.type, r.seq) == ("fetch", 7)
    with pytest.raises(ProtocolError) as e:
        decode_request(b'{"v":2,"type":"ping","seq":3}')
    assert e.value.code == "bad_version" and e.value.re == 3 and e.value.body()["supported"] == [1]
    with pytest.raises(ValueError):
        ProtocolError("no_such_code", "x")


def test_constants_are_consistent():
    assert wire.FINAL_STATES < set(wire.JOB_STATES)
    assert set(wire.ACTIVE_STATES) == {"queued", "running", "cancelling"}
    assert wire.DTYPES == tuple(sorted(wire.ALLOWED_DTYPES)) and all(np.dtype(d) for d in wire.DTYPES)
    assert "missing_model" in wire.JOB_ERROR_CODES and not (wire.JOB_ERROR_CODES & wire.ERROR_CODES)


def test_limits_from_welcome():
    lim = Limits.from_dict({"max_files": 7, "chunk_bytes": "big", "server_paths": 1, "extensions": [".png"],
                            "unknown": 3})
    assert lim.max_files == 7 and lim.chunk_bytes == wire.CHUNK_BYTES and lim.server_paths is False
    assert lim.extensions == [".png"] and Limits.from_dict(lim.to_dict()) == lim and Limits.from_dict(None) == Limits()


def test_names():
    assert safe_name("a b/../c") == "a_b_.._c" and safe_name("...") == "part" and safe_name("__x__", strip="._") == "x"
    assert safe_name("chair #2", default="class", strip="_") == "chair_2"
    assert sanitize_name("imgs\\a b.JPG", "files[0].name") == "imgs/a_b.JPG"
    for bad in ("../x.png", "/x.png", "C:x.png", ".h.png", "a//b.png", "x.exe", "a/b/c/d/e.png", "x.bin"):
        with pytest.raises(ProtocolError) as e:
            sanitize_name(bad, "files[0].name")
        assert e.value.code == "invalid_file" and e.value.field == "files[0].name"
    assert sanitize_name("sparse/0/cameras.bin", "f") == "sparse/0/cameras.bin"


def test_json_strict_and_lenient(tmp_path):
    class Thing:
        def __str__(self):
            return "thing"

    obj = {"a": np.float32(1.5), 3: (np.int64(2), float("nan")), "s": {1, 2}, "p": Path("/x"), "t": Thing()}
    with pytest.raises(TypeError, match=r"value at \$\.t is a Thing"):
        to_jsonable(obj)
    assert json_safe(obj) == {"a": 1.5, "3": [2, None], "s": [1, 2], "p": "/x", "t": "thing"}
    assert json_safe({(1, 2): np.array(["x"])}) == {"(1, 2)": ["x"]}
    p = write_json_atomic(tmp_path / "d" / "f.json", {"x": np.arange(3)}, indent=None)
    assert json.loads(p.read_text()) == {"x": [0, 1, 2]} and [q.name for q in p.parent.iterdir()] == ["f.json"]


def test_result_folder_round_trip_and_checks(tmp_path):
    parts = [ResultPart("pts #1", "points", {"positions": np.ones((4, 3), np.float32)}, {"n": 4})]
    write_parts(tmp_path / "out" / "result", parts, scene="room", up=(0, 1, 0))
    files = sorted(f.name for f in (tmp_path / "out" / "result").iterdir())
    assert files == ["000_pts_1.positions.npy", "manifest.json"]
    for where in (tmp_path / "out" / "result", tmp_path / "out"):  # a result folder, or the folder holding result/
        manifest, got = read_parts(where, mmap=False)
        assert manifest["scene"] == "room" and manifest["up"] == [0.0, 1.0, 0.0]
        assert got[0].name == "pts #1" and got[0].meta == {"n": 4} and got[0].arrays["positions"].sum() == 12
    with pytest.raises(ValueError, match="unsupported dtype"):
        write_parts(tmp_path / "bad", [ResultPart("x", "points", {"a": np.array(["s"])})], scene="s")
    m = json.loads((tmp_path / "out" / "result" / "manifest.json").read_text())
    m["parts"][0]["arrays"]["positions"] = "../escape.npy"
    (tmp_path / "out" / "result" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ResultFormatError, match="outside the folder"):
        read_parts(tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="no result manifest"):
        read_parts(tmp_path)


def test_wire_stands_alone():
    """Only numpy and the standard library: importing it pulls in nothing else from aligngs, and no torch/zmq/bpy;
    every import inside is relative (so the add-on can vendor the folder as is)."""
    code = ("import sys; import aligngs.wire; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'zmq', 'bpy', 'backend') "
            "or (m.startswith('aligngs.') and not m.startswith('aligngs.wire'))]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    for f in (REPO / "aligngs" / "wire").glob("*.py"):
        for line in f.read_text().splitlines():
            if line.startswith(("import ", "from ")):
                mod = line.split()[1]
                assert mod.startswith(".") or mod.split(".")[0] in ("__future__", "json", "math", "os", "re", "sys",
                    "struct", "tempfile", "contextlib", "dataclasses", "pathlib", "typing", "numpy"), (f.name, line)
