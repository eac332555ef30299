"""AlignGS reconstruction server: ZeroMQ ROUTER front end, job store, per-job worker processes.

Entry points: ``python -m backend.serve`` (the server), ``python -m backend.keys`` (CURVE keys),
``backend.client.Client`` is a reference client; the benchmark is ``python -m benchmarks backend``. Layout: ``server``
(socket loop) -> ``handlers`` (requests) -> ``scheduler`` (queue, job table) -> ``executors`` (local processes or
Ray tasks) -> ``worker`` (runs one job); errors derive from ``backend.errors.BackendError``.
The wire protocol is specified in docs/protocol.md. Nothing here imports torch (job processes import the pipeline).
"""
import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())
