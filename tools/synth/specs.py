"""What a synthetic room is made of (plain data, no bpy): materials, objects, lights, walls and the room layout."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from aligngs.priors.ade20k import CLASS_NAMES
from tools.synth.geometry import PartMesh


STUFF_CLASSES = ("wall", "floor", "ceiling")


class LayoutError(RuntimeError):
    """No valid layout was found for a seed within the attempt budget."""


@dataclass(frozen=True)
class MaterialSpec:
    """A procedural material: ``pattern`` mixes ``color_a``/``color_b`` (linear RGB) at a metric ``scale``."""

    pattern: str  # plaster | wallpaper | planks | tiles | wood | fabric | weave | metal | sky | shade | canvas
    color_a: tuple[float, float, float]
    color_b: tuple[float, float, float]
    scale: float = 1.0  # texture features per metre (pattern specific)
    roughness: float = 0.6
    emission: float = 0.0  # emission strength (linear) for sky / lamp shade
    camera_only: bool = False  # opaque to camera rays, transparent to light (the window pane)


@dataclass
class ObjectSpec:
    name: str
    class_id: int
    instance_id: int
    mesh: PartMesh
    materials: list[MaterialSpec]

    @property
    def class_name(self) -> str:
        return CLASS_NAMES[self.class_id]

    @property
    def stuff(self) -> bool:
        return self.class_name in STUFF_CLASSES


@dataclass(frozen=True)
class LightSpec:
    name: str
    kind: str  # "AREA" | "POINT"
    location: tuple[float, float, float]
    power: float  # watts
    size: float  # area light edge / point light radius (m)
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class Wall:
    """A wall seen from inside: bottom-left ``origin``, unit ``along`` to the right, unit ``inward``."""

    name: str
    origin: tuple[float, float, float]
    along: tuple[float, float, float]
    inward: tuple[float, float, float]
    length: float

    def point(self, u: float, s: float, z: float = 0.0) -> np.ndarray:
        return np.asarray(self.origin) + np.asarray(self.along) * u + np.asarray(self.inward) * s + np.array([0, 0, z])

    @property
    def yaw(self) -> float:
        """Yaw that turns an object's local +y (its front) to face into the room."""
        ix, iy = self.inward[0], self.inward[1]
        return math.atan2(-ix, iy)


@dataclass
class RoomLayout:
    seed: int
    size: tuple[float, float, float]  # sx, sy, height
    walls: list[Wall]
    objects: list[ObjectSpec]
    lights: list[LightSpec]
    world_color: tuple[float, float, float]
    world_strength: float
    keepout: list[tuple[float, float, float, float, float]] = field(default_factory=list)  # x0,y0,x1,y1,ztop
    openings: dict = field(default_factory=dict)

    def object_by_instance(self) -> dict[int, ObjectSpec]:
        return {o.instance_id: o for o in self.objects}
