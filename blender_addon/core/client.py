"""The add-on's protocol client (docs/protocol.md; pure Python + pyzmq + numpy, no bpy), in one import:

* ``Connection`` (``connection``): a worker thread owns one ZeroMQ DEALER socket; requests go in through
  thread-safe methods, typed messages (``messages``: ``Connected``, ``ServerInfo``, ``Accepted``, ``Progress``,
  ``ResultStarted``, ``PartReceived``, ``Done``, ``Cancelled``, ``JobList``, ``JobStatus``, ``Error``,
  ``Disconnected``...) come out of ``Connection.events``.
* Blocking helpers for scripts (``blocking``): ``Client``, ``submit_and_wait`` and ``fetch``.
* CURVE keys (``keys``) and the error texts (``errors``).

Error codes are the server's plus client-side ones: ``unreachable`` (no answer in time), ``auth`` (CURVE handshake
rejected), ``protocol`` (the server sent something this client cannot read), ``input`` (the image folder cannot be
sent), and a job's ``failed`` codes (``job_failed``, ``bad_input``, ``missing_model``, ``worker_died``,
``job_interrupted``).
"""
from __future__ import annotations

from .._vendor.wire import PROTOCOL_VERSION  # noqa: F401
from .blocking import Client, Result, fetch, submit_and_wait  # noqa: F401
from .connection import CLIENT_NAME, Connection  # noqa: F401
from .errors import ClientError, JobCancelled, describe_error, unreachable_text  # noqa: F401
from .keys import CurveKeys, load_key_file  # noqa: F401
from .messages import (Accepted, Cancelled, Connected, Disconnected, Done, Downloading, Error, JobList,  # noqa: F401
                       JobStatus, Message, PartReceived, Pong, Progress, ResultStarted, ServerInfo)
