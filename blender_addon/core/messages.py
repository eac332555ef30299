"""The typed messages the connection thread posts to ``Connection.events`` (small dataclasses, no bpy)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._vendor import wire
from .errors import describe_error


@dataclass
class Connected:
    address: str


@dataclass
class ServerInfo:
    address: str
    server: str
    protocol: int
    device: str
    queue: dict
    workers: list
    presets: dict
    default_preset: str
    limits: dict
    curve: bool
    teachers: dict = field(default_factory=dict)
    defaults: dict = field(default_factory=dict)  # the server's full default configuration (PipelineConfig)
    choices: dict = field(default_factory=dict)  # setting path -> allowed names (welcome.choices + teachers)

    @property
    def queue_length(self) -> int:
        return int(self.queue.get("queued", 0)) + int(self.queue.get("running", 0))


@dataclass
class Accepted:
    job: str
    state: str
    position: int | None
    record: dict
    re: int | None = None


@dataclass
class JobStatus:
    job: str
    record: dict
    subscribed: bool = False
    re: int | None = None


@dataclass
class JobList:
    jobs: list[dict]
    re: int | None = None


@dataclass
class Progress:
    job: str
    stage: str
    stage_index: int
    stage_count: int
    fraction: float
    overall: float
    message: str = ""
    iteration: int | None = None
    total: int | None = None
    eta_s: float | None = None
    n_gaussians: int | None = None
    losses: dict = field(default_factory=dict)
    preview: np.ndarray | None = None  # uint8 [h,w,3], rows top to bottom
    points: "wire.PointsPreview | None" = None  # the live point preview (positions, colours, class colours)


@dataclass
class ResultStarted:
    job: str
    manifest: dict  # version, scene, up, parts (filled in as parts arrive)
    n_parts: int
    nbytes: int
    re: int | None = None


@dataclass
class Downloading:
    job: str
    received: int
    total: int


@dataclass
class PartReceived:
    name: str
    kind: str
    arrays: dict[str, np.ndarray]
    meta: dict
    job: str = ""
    index: int = 0
    count: int = 0


@dataclass
class Done:
    job: str
    manifest: dict
    summary: dict
    record: dict
    re: int | None = None


@dataclass
class Cancelled:
    job: str
    record: dict
    re: int | None = None


@dataclass
class Pong:
    time: float
    re: int | None = None


@dataclass
class Error:
    code: str
    message: str
    job: str | None = None
    field: str | None = None
    state: str | None = None
    re: int | None = None

    def text(self) -> str:
        return describe_error(self.code, self.message, self.field)


@dataclass
class Disconnected:
    address: str
    reason: str


Message = (Connected | ServerInfo | Accepted | JobStatus | JobList | Progress | ResultStarted | Downloading
           | PartReceived | Done | Cancelled | Pong | Error | Disconnected)
