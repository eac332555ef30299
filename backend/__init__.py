"""AlignGS reconstruction server: ZeroMQ ROUTER front end, job store, per-job worker processes.

Entry points: ``python -m backend.serve`` (the server), ``python -m backend.keys`` (CURVE keys),
``python -m backend.bench`` (transfer benchmark); ``backend.client.Client`` is a reference client.
The wire protocol is specified in docs/protocol.md. Nothing here imports torch (job processes import the pipeline).
"""
import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())
