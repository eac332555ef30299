"""``python -m benchmarks backend [--executor ray] --json PATH``: the backend server's transfer figures, or its Ray path.

Default (``--executor local``), submit and result-streaming throughput of a real server process:

- submit_s: time from sending a submit of 36 JPEGs (640x480; the shelf-rgbd colour frames re-encoded when
  ../shared/data is present, else synthetic noise + gradients) to receiving ``accepted`` (median of the repeats);
- stream_s / stream_mb_s: time to ``fetch`` a 1M-point cloud + 200k-triangle mesh (the client reassembles every
  array) and the resulting MB/s (best of the repeats);
- raw_mb_s: the same bytes as the same frames sent by a plain pyzmq ROUTER in another process to a DEALER over
  the same transport (best of the repeats); ratio = stream_mb_s / raw_mb_s.

``--executor ray`` starts a real Ray cluster on loopback (tests/backend/ray_cluster.py: one CPU per node) and
prints:
- overhead_s: per-job wall time (submit to ``done``) of a tiny job through the Ray executor minus the same job
  through the local executor (medians over ``--repeats`` sequential jobs; target <= 2 s);
- one_node / two_nodes: ``--jobs`` jobs of about ``--job-s`` seconds each (sleep-bound, so the figure measures
  scheduling, not the shared CPUs) on a one-node cluster and after adding a second node: seconds and jobs/min,
  and speedup = two_nodes jobs/min / one_node jobs/min (ideal 2).
Figures from a shared machine are upper bounds for the times.
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

from backend.client import Client

N_IMAGES, W, H = 36, 640, 480
N_POINTS, N_TRIANGLES = 1_000_000, 200_000
REPO = Path(__file__).resolve().parents[1]
TEST_RUNNER = str(REPO / "tests" / "backend" / "runner.py") + ":run"


def bench_runner(input_path, out_dir, config, *, progress=None, should_cancel=None) -> dict:
    """Job function for the benchmark server: writes a 1M-point cloud and a 200k-triangle mesh (or tiny parts)."""
    from aligngs.wire import ResultPart, write_parts

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


def start_server(tmp: Path, *args: str, runner: str, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    n = len(list(tmp.glob("ready*.json")))
    ready = tmp / f"ready{n}.json"
    cmd = [sys.executable, "-m", "backend.serve", "--bind", "tcp://127.0.0.1:*", "--jobs-dir", str(tmp / f"jobs{n}"),
           "--device", "cpu", "--runner", runner, "--ready-file", str(ready),
           "--log-level", os.environ.get("BENCH_LOG", "WARNING"), *args]
    proc = subprocess.Popen(cmd, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO), **(env or {})))
    deadline = time.monotonic() + 120
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("benchmark server did not start")
        time.sleep(0.05)
    return proc, json.loads(ready.read_text())["endpoint"]


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def transfer(args) -> dict:
    images, source = make_jpegs(args.shared)
    with tempfile.TemporaryDirectory(prefix="aligngs-bench-") as tmp:
        proc, endpoint = start_server(Path(tmp), runner=f"{Path(__file__).resolve()}:bench_runner")
        try:
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
            stop_server(proc)
    raw_times = raw_transfer(sizes, args.repeats)
    mb = nbytes / 1e6
    stream_s, raw_s = min(stream_times), min(raw_times)
    return {
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


def _tiny_files(seed: int, **control) -> dict[str, bytes]:
    from PIL import Image

    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)).save(buf, format="JPEG")
    files = {"images/0000.jpg": buf.getvalue(), "images/0001.jpg": buf.getvalue()[:]}
    if control:
        files["control.json"] = json.dumps(control).encode()
    return files


def job_times(endpoint: str, n: int, seed: int, **control) -> list[float]:
    """Wall seconds from submit to ``done`` of ``n`` sequential jobs."""
    out = []
    with Client(endpoint, timeout=300) as c:
        for k in range(n):
            t0 = time.perf_counter()
            job, seq = c.submit(_tiny_files(seed + k, **control), preset="fast")
            c.wait(job, seq)
            out.append(time.perf_counter() - t0)
    return out


def batch_time(endpoint: str, n: int, seed: int, **control) -> float:
    """Wall seconds for ``n`` jobs submitted at once to all be ``done``."""
    with Client(endpoint, timeout=600) as c:
        t0 = time.perf_counter()
        jobs = [c.submit(_tiny_files(seed + k, **control), preset="fast") for k in range(n)]
        for job, seq in jobs:
            c.wait(job, seq)
        return time.perf_counter() - t0


def ray_path(args) -> dict:
    sys.path.insert(0, str(REPO / "tests" / "backend"))
    from ray_cluster import RAY_ENV, server_args, start_cluster

    steps = max(1, int(round(args.job_s / 0.1)))
    sleepy = {"steps": steps, "step_s": 0.1}
    tiny = {"steps": 1, "step_s": 0.0}
    with tempfile.TemporaryDirectory(prefix="aligngs-bench-") as tmp_:
        tmp = Path(tmp_)
        proc, endpoint = start_server(tmp, runner=TEST_RUNNER)
        try:
            job_times(endpoint, 1, 900, **tiny)  # warm-up
            local = job_times(endpoint, args.repeats, 1000, **tiny)
        finally:
            stop_server(proc)
        cluster = start_cluster(n_nodes=1, cpus_per_node=1)
        try:
            proc, endpoint = start_server(tmp, *server_args(cluster), runner=TEST_RUNNER, env=RAY_ENV)
            try:
                job_times(endpoint, 1, 1900, **tiny)  # warm-up (Ray worker start)
                ray = job_times(endpoint, args.repeats, 2000, **tiny)
                one = batch_time(endpoint, args.jobs, 3000, **sleepy)
            finally:
                stop_server(proc)
            cluster.add_node(cpus=1)
            cluster.wait_nodes(2)
            proc, endpoint = start_server(tmp, *server_args(cluster), runner=TEST_RUNNER, env=RAY_ENV)
            try:
                job_times(endpoint, 2, 3900, **tiny)  # warm-up on both nodes
                two = batch_time(endpoint, args.jobs, 4000, **sleepy)
            finally:
                stop_server(proc)
        finally:
            cluster.stop()
    local_s, ray_s = statistics.median(local), statistics.median(ray)
    return {
        "executor": "ray",
        "tiny_job_local_s": local_s,
        "tiny_job_ray_s": ray_s,
        "overhead_s": ray_s - local_s,
        "overhead_target_s": 2.0,
        "jobs": args.jobs,
        "job_s": steps * 0.1,
        "one_node": {"seconds": one, "jobs_per_min": 60 * args.jobs / one},
        "two_nodes": {"seconds": two, "jobs_per_min": 60 * args.jobs / two},
        "speedup": one / two,
        "repeats": args.repeats,
        "cluster": "loopback, 1 CPU per node, 1 CPU per job",
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks backend", description=__doc__.split("\n")[0])
    ap.add_argument("--json", type=Path, default=None, help="write the figures there")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data" / "shelf-rgbd")
    ap.add_argument("--executor", choices=("local", "ray"), default="local",
                    help="local: transfer figures; ray: Ray overhead per job and throughput over 1 vs 2 nodes")
    ap.add_argument("--jobs", type=int, default=6, help="(ray) jobs per throughput batch")
    ap.add_argument("--job-s", type=float, default=2.0, help="(ray) seconds each throughput job sleeps through")
    args = ap.parse_args(argv)
    out = ray_path(args) if args.executor == "ray" else transfer(args)
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
