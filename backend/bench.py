"""``python -m backend.bench --json PATH``: submit and result-streaming throughput of a real server process.

- submit_s: time from sending a submit of 36 JPEGs (640x480; the shelf-rgbd colour frames re-encoded when
  ../shared/data is present, else synthetic noise + gradients) to receiving ``accepted`` (median of the repeats);
- stream_s / stream_mb_s: time to ``fetch`` a 1M-point cloud + 200k-triangle mesh (the client reassembles every
  array) and the resulting MB/s (best of the repeats);
- raw_mb_s: the same bytes as the same frames sent by a plain pyzmq ROUTER in another process to a DEALER over
  the same transport (best of the repeats); ratio = stream_mb_s / raw_mb_s.
"""
from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import zmq

from .client import Client

N_IMAGES, W, H = 36, 640, 480
N_POINTS, N_TRIANGLES = 1_000_000, 200_000
REPO = Path(__file__).resolve().parents[1]


def bench_runner(input_path, out_dir, config, *, progress=None, should_cancel=None) -> dict:
    """Job function for the benchmark server: writes a 1M-point cloud and a 200k-triangle mesh (or tiny parts)."""
    from aligngs.results import ResultPart, write_parts

    ctl_file = Path(input_path) / "control.json"
    big = ctl_file.is_file() and json.loads(ctl_file.read_text()).get("big", False)
    rng = np.random.default_rng(0)
    n_pts, n_tri = (N_POINTS, N_TRIANGLES) if big else (10, 10)
    n_vert = n_tri // 2 + 2
    parts = [
        ResultPart("mesh", "mesh", {
            "vertices": rng.normal(size=(n_vert, 3)).astype(np.float32),
            "faces": rng.integers(0, n_vert, size=(n_tri, 3), dtype=np.int32),
            "colors": rng.integers(0, 256, size=(n_vert, 3), dtype=np.uint8),
            "class_id": rng.integers(0, 150, size=n_vert, dtype=np.int32),
        }),
        ResultPart("points", "points", {
            "positions": rng.normal(size=(n_pts, 3)).astype(np.float32),
            "colors": rng.integers(0, 256, size=(n_pts, 3), dtype=np.uint8),
            "class_id": rng.integers(0, 150, size=n_pts, dtype=np.int32),
            "confidence": rng.random(n_pts, dtype=np.float32),
        }),
    ]
    write_parts(Path(out_dir) / "result", parts, scene="bench")
    return {"metrics": {}, "counts": {"points": n_pts, "triangles": n_tri}}


def make_jpegs(shared: Path | None) -> tuple[dict[str, bytes], str]:
    from PIL import Image

    frames = sorted(shared.glob("frame-*.color.png"))[:N_IMAGES] if shared and shared.is_dir() else []
    out = {}
    source = "shelf-rgbd colour frames re-encoded" if len(frames) == N_IMAGES else "synthetic noise + gradients"
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:H, 0:W]
    for i in range(N_IMAGES):
        if len(frames) == N_IMAGES:
            img = Image.open(frames[i]).convert("RGB").resize((W, H))
        else:
            grad = np.stack([xx * 255 // W, yy * 255 // H, (xx + yy + 10 * i) % 256], -1)
            img = Image.fromarray(np.clip(grad + rng.normal(0, 20, grad.shape), 0, 255).astype(np.uint8))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        out[f"images/{i:04d}.jpg"] = buf.getvalue()
    return out, source


def _raw_sender(endpoint_q, sizes: list[int], rounds: int) -> None:
    ctx = zmq.Context()
    r = ctx.socket(zmq.ROUTER)
    r.setsockopt(zmq.SNDHWM, 0)
    port = r.bind_to_random_port("tcp://127.0.0.1")
    endpoint_q.put(f"tcp://127.0.0.1:{port}")
    blobs = [np.random.default_rng(1).integers(0, 256, n, dtype=np.uint8) for n in sizes]
    for _ in range(rounds):
        ident, _req = r.recv_multipart()
        for b in blobs:
            r.send_multipart([ident, b"h", memoryview(b)], copy=False)
    r.recv_multipart()  # "bye": everything arrived, closing cannot drop anything
    r.close()
    ctx.term()


def raw_transfer(sizes: list[int], rounds: int) -> list[float]:
    """Seconds per round for a plain ROUTER (other process) -> DEALER transfer of one frame per size."""
    mp = multiprocessing.get_context("spawn")
    q = mp.Queue()
    p = mp.Process(target=_raw_sender, args=(q, sizes, rounds))
    p.start()
    ctx = zmq.Context()
    d = ctx.socket(zmq.DEALER)
    d.setsockopt(zmq.RCVHWM, 0)
    d.connect(q.get(timeout=60))
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        d.send(b"go")
        got = []
        for _n in sizes:
            frames = d.recv_multipart(copy=False)
            got.append(np.frombuffer(frames[1].buffer, np.uint8))
        times.append(time.perf_counter() - t0)
        assert [g.nbytes for g in got] == sizes
    d.send(b"bye")
    d.close(linger=2000)
    ctx.term()
    p.join(30)
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m backend.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, default=None, help="write the figures there")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data" / "shelf-rgbd")
    args = ap.parse_args(argv)
    images, source = make_jpegs(args.shared)
    with tempfile.TemporaryDirectory(prefix="aligngs-bench-") as tmp:
        ready = Path(tmp) / "ready.json"
        cmd = [sys.executable, "-m", "backend.serve", "--bind", "tcp://127.0.0.1:*", "--jobs-dir", str(Path(tmp) / "jobs"),
               "--device", "cpu", "--runner", "backend.bench:bench_runner", "--ready-file", str(ready), "--log-level", os.environ.get("BENCH_LOG", "WARNING")]
        proc = subprocess.Popen(cmd, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
        try:
            deadline = time.monotonic() + 60
            while not ready.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("benchmark server did not start")
                time.sleep(0.05)
            endpoint = json.loads(ready.read_text())["endpoint"]
            with Client(endpoint, timeout=300) as c:
                c.ping()
                submit_times = []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    job, _ = c.submit(images, preset="fast", attach=False)
                    submit_times.append(time.perf_counter() - t0)
                files = dict(images, **{"control.json": json.dumps({"big": True}).encode()})
                job, seq = c.submit(files, preset="fast")
                c.wait(job, seq)  # the live stream once (also warms the page cache)
                stream_times, nbytes, sizes = [], 0, []
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    res = c.fetch(job, files=False, parts=["mesh", "points"])
                    stream_times.append(time.perf_counter() - t0)
                    sizes = [int(a.nbytes) for p in res.parts for a in p.arrays.values()]
                    nbytes = sum(sizes)
                    assert res.part("points").arrays["positions"].shape == (N_POINTS, 3)
                    assert res.part("mesh").arrays["faces"].shape == (N_TRIANGLES, 3)
        finally:
            proc.terminate()
            proc.wait(30)
    raw_times = raw_transfer(sizes, args.repeats)
    mb = nbytes / 1e6
    stream_s, raw_s = min(stream_times), min(raw_times)
    out = {
        "submit_s": statistics.median(submit_times),
        "submit_mb": sum(len(v) for v in images.values()) / 1e6,
        "n_images": N_IMAGES,
        "image_source": source,
        "stream_s": stream_s,
        "stream_mb": mb,
        "stream_mb_s": mb / stream_s,
        "raw_s": raw_s,
        "raw_mb_s": mb / raw_s,
        "ratio": (mb / stream_s) / (mb / raw_s),
        "repeats": args.repeats,
        "transport": "tcp://127.0.0.1",
    }
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
