"""Every kind of bad request gets its typed error (and the right ``re``); oversize frames cost only the sender."""
from __future__ import annotations

import json

import pytest

from backend.client import Client, ServerError
from backend.protocol import encode_header

from backend_testlib import jpeg, launch, scene_files

LIMITS = ("--max-images", "6", "--max-image-mb", "0.05", "--max-message-mb", "0.12", "--max-queue", "3")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    sp = launch(tmp_path_factory.mktemp("req"), *LIMITS, "--workers", "1")
    yield sp
    sp.stop()


@pytest.fixture
def c(server):
    with Client(server.endpoint, timeout=10) as client:
        yield client


def raw(c: Client, frames: list[bytes]) -> dict:
    c.send_raw(frames)
    return c.recv_any(10).header


def hdr(**kw) -> bytes:
    return json.dumps({"v": 1, "seq": 5, **kw}).encode()


def files_entry(files: dict[str, bytes]) -> tuple[list[dict], list[bytes]]:
    return [{"name": k, "frame": i + 1, "nbytes": len(v)} for i, (k, v) in enumerate(files.items())], list(files.values())


@pytest.mark.parametrize(
    "frames, code, re_, field",
    [
        ([b"not json"], "malformed", None, None),
        ([b"\xff\xfe"], "malformed", None, None),
        ([b"[1,2]"], "malformed", None, None),
        ([b""], "malformed", None, None),
        ([b'{"v":1,"type":"ping","seq":1,"x":NaN}'], "malformed", None, None),
        ([b"[" * 100000 + b"]" * 100000], "malformed", None, None),
        ([json.dumps({"v": 2, "type": "ping", "seq": 4}).encode()], "bad_version", 4, "v"),
        ([json.dumps({"type": "ping", "seq": 4}).encode()], "bad_version", 4, "v"),
        ([json.dumps({"v": True, "type": "ping", "seq": 4}).encode()], "bad_version", 4, "v"),
        ([json.dumps({"v": 1, "type": "ping"}).encode()], "malformed", None, "seq"),
        ([json.dumps({"v": 1, "type": "ping", "seq": -1}).encode()], "malformed", None, "seq"),
        ([json.dumps({"v": 1, "type": "ping", "seq": 2**60}).encode()], "malformed", None, "seq"),
        ([json.dumps({"v": 1, "type": 7, "seq": 3}).encode()], "malformed", 3, "type"),
        ([hdr(type="explode")], "unknown_type", 5, None),
        ([hdr(type="ping"), b"extra"], "bad_frames", 5, None),
        ([hdr(type="status")], "malformed", 5, "job"),
        ([hdr(type="status", job=5)], "malformed", 5, "job"),
        ([hdr(type="status", job="../../etc")], "unknown_job", 5, None),
        ([hdr(type="status", job="A" * 22)], "unknown_job", 5, None),
        ([hdr(type="fetch", job="A" * 22)], "unknown_job", 5, None),
        ([hdr(type="list", state=3)], "malformed", 5, "state"),
        ([hdr(type="log", job="A" * 22, bytes=0)], "unknown_job", 5, None),
        ([hdr(type="submit", preset="fast")], "malformed", 5, "files"),
        ([hdr(type="submit", files=[], server_path="/tmp")], "malformed", 5, "files"),
        ([hdr(type="submit", files=[], config={}, preset="fast")], "malformed", 5, "config"),
        ([hdr(type="submit", server_path="/tmp")], "server_paths_disabled", 5, "server_path"),
    ],
)
def test_bad_requests(c, frames, code, re_, field):
    h = raw(c, frames)
    assert h["type"] == "error" and h["code"] == code, h
    assert h["re"] == re_ and h["v"] == 1
    assert h.get("field") == field
    if code == "bad_version":
        assert h["supported"] == [1]


def submit_error(c: Client, files: dict[str, bytes] | None = None, *, entries=None, frames=None, **fields) -> dict:
    if entries is None:
        entries, frames = files_entry(files)
    return raw(c, [hdr(type="submit", files=entries, **fields), *frames])


@pytest.mark.parametrize(
    "settings, field",
    [
        ({"preset": "turbo"}, "preset"),
        ({"preset": "fast", "overrides": {"train": {"iterations": "many"}}}, "config.train.iterations"),
        ({"preset": "fast", "overrides": {"train": {"iterations": 0}}}, "config.train.iterations"),
        ({"preset": "fast", "overrides": {"train": {"warp_speed": 9}}}, "config.train.warp_speed"),
        ({"preset": "fast", "overrides": {"train": 5}}, "config.train"),
        ({"preset": "fast", "overrides": {"data": {"resolution": "hd"}}}, "config.data.resolution"),
        ({"preset": "fast", "overrides": {"data": {"resolution": 4}}}, "config.data.resolution"),
        ({"preset": "fast", "overrides": {"data": {"test_names": [1, 2]}}}, "config.data.test_names"),
        ({"preset": "fast", "overrides": {"train": {"background": ["a", 0, 0]}}}, "config.train.background"),
        ({"preset": "fast", "overrides": {"train": {"background": [0, 0]}}}, "config.train.background"),
        ({"preset": "fast", "overrides": {"train": {"device": "cuda"}}}, "config.train.device"),  # CPU-only server
        ({"preset": "fast", "overrides": {"train": {"device": "tpu"}}}, "config.train.device"),
        ({"preset": "fast", "overrides": {"mode": "nerf"}}, "config.mode"),
        ({"preset": "fast", "overrides": {"train": {"semantics": {"teacher": "oracle"}}}}, "config.train.semantics.teacher"),
        ({"preset": "fast", "overrides": {"train": {"semantics": {"enabled": "yes"}}}}, "config.train.semantics.enabled"),
        ({"config": {"mesh": {"voxel_size": "small"}}}, "config.mesh.voxel_size"),
        ({"config": {"data": {"poses": "magic"}}}, "config.data.poses"),
        ({"config": {"train": {"lr": {"means": None}}}}, "config.train.lr.means"),
    ],
)
def test_invalid_settings_name_the_field(c, settings, field):
    h = submit_error(c, scene_files(0, n=1), **settings)
    assert h["code"] == "invalid_settings" and h["field"] == field, h
    assert h["re"] == 5


IMG = jpeg(0)


@pytest.mark.parametrize(
    "files, code, field",
    [
        ({"../evil.jpg": IMG}, "invalid_file", "files[0].name"),
        ({"a/../../evil.jpg": IMG}, "invalid_file", "files[0].name"),
        ({"/etc/evil.jpg": IMG}, "invalid_file", "files[0].name"),
        ({"C:\\evil.jpg": IMG}, "invalid_file", "files[0].name"),
        ({"..\\evil.jpg": IMG}, "invalid_file", "files[0].name"),
        ({".hidden.jpg": IMG}, "invalid_file", "files[0].name"),
        ({"ok.jpg": IMG, "images/.git/x.jpg": IMG}, "invalid_file", "files[1].name"),
        ({"a//b.jpg": IMG}, "invalid_file", "files[0].name"),
        ({"a/b/c/d/e.jpg": IMG}, "invalid_file", "files[0].name"),
        ({"x.exe": IMG}, "invalid_file", "files[0].name"),
        ({"noext": IMG}, "invalid_file", "files[0].name"),
        ({"data.bin": IMG}, "invalid_file", "files[0].name"),
        ({"x.png": IMG}, "invalid_file", "files[0]"),  # JPEG bytes with a .png name
        ({"x.jpg": b"GIF89a"}, "invalid_file", "files[0]"),
        ({"x.jpg": IMG, "poses.txt": b"\xff\xfe\x00"}, "invalid_file", "files[1]"),
        ({"a b.jpg": IMG, "a_b.jpg": IMG}, "invalid_file", "files[1].name"),  # duplicate after sanitising
        ({"A.jpg": IMG, "a.JPG": IMG}, "invalid_file", "files[1].name"),  # duplicate ignoring case
        ({"transforms.json": b"{}"}, "invalid_file", "files"),  # no image
        ({f"{i}.jpg": IMG for i in range(7)}, "too_large", "files"),  # --max-images 6
        ({"big.jpg": b"\xff\xd8\xff" + bytes(60_000)}, "too_large", "files[0]"),  # --max-image-mb 0.05
    ],
)
def test_bad_files(c, files, code, field):
    h = submit_error(c, files, preset="fast")
    assert h["code"] == code and h.get("field") == field, h


def test_frame_bookkeeping(c):
    files = {"a.jpg": IMG, "b.jpg": IMG[:-1] + b"\x00"}
    entries, frames = files_entry(files)
    assert submit_error(c, entries=entries, frames=frames[:1], preset="fast")["code"] == "bad_frames"
    assert submit_error(c, entries=entries, frames=frames + [b"x"], preset="fast")["code"] == "bad_frames"
    bad = [dict(entries[0]), dict(entries[1], frame=1)]
    assert submit_error(c, entries=bad, frames=frames, preset="fast")["field"] == "files[1].frame"
    bad = [dict(entries[0], nbytes=entries[0]["nbytes"] + 1), entries[1]]
    h = submit_error(c, entries=bad, frames=frames, preset="fast")
    assert h["code"] == "bad_frames" and h["field"] == "files[0].nbytes"
    bad = [dict(entries[0], frame="1"), entries[1]]
    assert submit_error(c, entries=bad, frames=frames, preset="fast")["code"] == "bad_frames"
    assert submit_error(c, entries=["a.jpg", "b.jpg"], frames=frames, preset="fast")["field"] == "files[0]"
    # the whole message over --max-message-mb (0.12 MiB) although each file is within --max-image-mb
    many = {f"{i}.jpg": b"\xff\xd8\xff" + bytes(40_000) for i in range(4)}
    h = submit_error(c, many, preset="fast")
    assert h["code"] == "too_large" and h.get("field") is None
    assert c.ping() > 0


def test_oversize_frame_drops_only_the_connection(server):
    with Client(server.endpoint, timeout=3) as c:
        c.send_raw([hdr(type="submit", preset="fast", files=[{"name": "a.jpg", "frame": 1, "nbytes": 2 << 20}]),
                    b"\xff\xd8\xff" + bytes((2 << 20) - 3)])
        with pytest.raises(TimeoutError):  # libzmq drops the connection at MAXMSGSIZE; no reply is possible
            c.recv_any(2)
        assert c.ping(timeout=10) > 0  # the DEALER reconnects by itself
    with Client(server.endpoint, timeout=10) as other:
        assert other.ping() > 0


def test_queue_full_and_unknown_job_states(server, tmp_path):
    with Client(server.endpoint, timeout=10) as c:
        slow = scene_files(1, n=1, steps=1000, step_s=0.05)
        jobs = [c.submit(slow, preset="fast", attach=False)[0] for _ in range(4)]  # 1 running + 3 queued
        with pytest.raises(ServerError) as e:
            c.submit(slow, preset="fast")
        assert e.value.code == "queue_full"
        with pytest.raises(ServerError) as e:
            c.fetch(jobs[0])
        assert e.value.code == "invalid_state" and e.value.header["state"] in ("running", "queued")
        with pytest.raises(ServerError) as e:
            c.delete(jobs[1])
        assert e.value.code == "invalid_state"
        with pytest.raises(ServerError) as e:
            c.resubmit(jobs[1])
        assert e.value.code == "invalid_state"
        for j in reversed(jobs):
            assert c.cancel(j, timeout=15)["record"]["state"] == "cancelled"
        with pytest.raises(ServerError) as e:
            c.request("log", job=jobs[0], bytes=0)
        assert e.value.code == "malformed" and e.value.field == "bytes"
        assert c.ping() > 0
