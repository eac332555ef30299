"""The 3DGS-standard Gaussian splat PLY (graphdeco ``save_ply`` layout), read by SIBR, SuperSplat, gsplat viewers.

One ``vertex`` element, float32 little-endian, in this order::

    x y z  nx ny nz  f_dc_0 f_dc_1 f_dc_2  f_rest_0 .. f_rest_{3(K-1)-1}  opacity  scale_0..2  rot_0..3

- ``f_dc_c`` = ``sh0[:, 0, c]`` (DC coefficient of colour channel c = R, G, B).
- ``f_rest`` is channel-major: all K-1 higher coefficients of R, then of G, then of B, i.e.
  ``f_rest_{c*(K-1) + k} = shN[:, k, c]`` (graphdeco ``features_rest.transpose(1, 2).flatten(1)``;
  gsplat ``shN.permute(0, 2, 1).reshape(N, -1)``).
- ``opacity`` is the logit, ``scale_i`` the log scale, ``rot`` the quaternion as w x y z (not normalised;
  as the optimiser holds it). Normals are written as zeros (3DGS does the same).
- Extra per-Gaussian properties follow the standard ones: a [N] array ``name`` is one property, a [N,k]
  array becomes ``name_0 .. name_{k-1}`` (e.g. ``sem`` [N,150] -> ``sem_0..sem_149``, ``class_id`` int32).
  Viewers ignore properties they do not know.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from aligngs.export.ply import _as_numpy, read_ply, write_ply

STANDARD_PREFIX = ("x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2")
STANDARD_SUFFIX = ("opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")
_REST = re.compile(r"^f_rest_(\d+)$")
_INDEXED = re.compile(r"^(.+)_(\d+)$")


def gaussian_property_names(num_sh_rest: int, extra: dict | None = None) -> list[str]:
    """The vertex property names, in file order, for K-1 = ``num_sh_rest`` higher SH coefficients."""
    names = list(STANDARD_PREFIX) + [f"f_rest_{i}" for i in range(3 * num_sh_rest)] + list(STANDARD_SUFFIX)
    for name, values in (extra or {}).items():
        a = _as_numpy(values)
        names += [name] if a.ndim == 1 else [f"{name}_{j}" for j in range(a.shape[1])]
    return names


def write_gaussians_ply(path, means, quats, log_scales, logit_opacities, sh0, shN, extra: dict | None = None) -> Path:
    """Write Gaussians in the 3DGS PLY layout (module doc).

    Args:
        means [N,3]; quats [N,4] w x y z; log_scales [N,3]; logit_opacities [N] (or [N,1]);
        sh0 [N,1,3]; shN [N,K-1,3] (K-1 may be 0); arrays or torch tensors.
        extra: optional name -> [N] or [N,k] per-Gaussian arrays (dtype kept: float32 features, int32 ids).
    """
    where = f"write_gaussians_ply({path})"
    means, quats, log_scales = (_as_numpy(a) for a in (means, quats, log_scales))
    opac, sh0, shN = _as_numpy(logit_opacities), _as_numpy(sh0), _as_numpy(shN)
    n = len(means)
    _expect(means, (n, 3), "means", where)
    _expect(quats, (n, 4), "quats", where)
    _expect(log_scales, (n, 3), "log_scales", where)
    if opac.shape == (n, 1):
        opac = opac[:, 0]
    _expect(opac, (n,), "logit_opacities", where)
    _expect(sh0, (n, 1, 3), "sh0", where)
    if shN.ndim != 3 or shN.shape[0] != n or shN.shape[2] != 3:
        raise ValueError(f"{where}: shN must be [N,K-1,3] with N={n}, got shape {shN.shape}")
    f32 = lambda a: np.ascontiguousarray(a, dtype=np.float32)  # noqa: E731
    vertex: dict[str, np.ndarray] = {}
    for i, k in enumerate("xyz"):
        vertex[k] = f32(means[:, i])
    for k in ("nx", "ny", "nz"):
        vertex[k] = np.zeros(n, dtype=np.float32)
    for c in range(3):
        vertex[f"f_dc_{c}"] = f32(sh0[:, 0, c])
    rest = shN.transpose(0, 2, 1).reshape(n, -1)  # channel-major
    for i in range(rest.shape[1]):
        vertex[f"f_rest_{i}"] = f32(rest[:, i])
    vertex["opacity"] = f32(opac)
    for i in range(3):
        vertex[f"scale_{i}"] = f32(log_scales[:, i])
    for i in range(4):
        vertex[f"rot_{i}"] = f32(quats[:, i])
    for name, values in (extra or {}).items():
        a = _as_numpy(values)
        if a.ndim not in (1, 2) or len(a) != n:
            raise ValueError(f"{where}: extra {name!r} must be [N] or [N,k] with N={n}, got shape {a.shape}")
        cols = {name: a} if a.ndim == 1 else {f"{name}_{j}": a[:, j] for j in range(a.shape[1])}
        for key, col in cols.items():
            if key in vertex:
                raise ValueError(f"{where}: extra property {key!r} clashes with an existing property")
            vertex[key] = np.ascontiguousarray(col)
    return write_ply(path, vertex)


def read_gaussians_ply(path) -> dict:
    """Read a 3DGS PLY back: ``means`` [N,3], ``quats`` [N,4], ``log_scales`` [N,3], ``logit_opacities`` [N],
    ``sh0`` [N,1,3], ``shN`` [N,K-1,3] (float32), ``normals`` [N,3], and ``extra``: every other property,
    with ``name_0 .. name_{k-1}`` runs regrouped into one [N,k] array under ``name`` (so a round trip gives
    back what :func:`write_gaussians_ply` was given)."""
    vertex, _faces = read_ply(path)
    missing = [k for k in STANDARD_PREFIX + STANDARD_SUFFIX if k not in vertex]
    if missing:
        raise ValueError(f"read_gaussians_ply: {path} is not a 3DGS PLY; missing properties {missing}")
    rest_idx = sorted(int(m.group(1)) for k in vertex if (m := _REST.match(k)))
    if rest_idx != list(range(len(rest_idx))) or len(rest_idx) % 3:
        raise ValueError(f"read_gaussians_ply: {path} has f_rest_* indices {rest_idx[:5]}..; expected 0..3(K-1)-1")
    col = lambda k: vertex.pop(k).astype(np.float32)  # noqa: E731
    n = len(vertex["x"])
    out = {
        "means": np.stack([col(k) for k in "xyz"], axis=1),
        "normals": np.stack([col(k) for k in ("nx", "ny", "nz")], axis=1),
        "sh0": np.stack([col(f"f_dc_{c}") for c in range(3)], axis=1).reshape(n, 1, 3),
    }
    rest = np.stack([col(f"f_rest_{i}") for i in rest_idx], axis=1) if rest_idx else np.zeros((n, 0), np.float32)
    out["shN"] = np.ascontiguousarray(rest.reshape(n, 3, len(rest_idx) // 3).transpose(0, 2, 1))
    out["logit_opacities"] = col("opacity")
    out["log_scales"] = np.stack([col(f"scale_{i}") for i in range(3)], axis=1)
    out["quats"] = np.stack([col(f"rot_{i}") for i in range(4)], axis=1)
    out["extra"] = _regroup(vertex)
    return out


def _regroup(props: dict) -> dict:
    """Group ``name_0..name_{k-1}`` (all present, same dtype) into [N,k] arrays; others stay 1-D."""
    groups: dict[str, dict[int, str]] = {}
    for key in props:
        m = _INDEXED.match(key)
        if m:
            groups.setdefault(m.group(1), {})[int(m.group(2))] = key
    out: dict = {}
    used: set[str] = set()
    for key in props:
        if key in used:
            continue
        m = _INDEXED.match(key)
        if m and m.group(1) not in props:
            idx = groups[m.group(1)]
            keys = [idx.get(j) for j in range(len(idx))]
            if None not in keys and len({props[k].dtype for k in keys}) == 1:
                out[m.group(1)] = np.stack([props[k] for k in keys], axis=1)
                used.update(keys)
                continue
        out[key] = props[key]
        used.add(key)
    return out


def _expect(a: np.ndarray, shape: tuple, name: str, where: str) -> None:
    if a.shape != shape:
        raise ValueError(f"{where}: {name} must have shape {list(shape)}, got {list(a.shape)}")
    if a.dtype.kind not in "fiu":
        raise ValueError(f"{where}: {name} must be numeric, got dtype {a.dtype}")
