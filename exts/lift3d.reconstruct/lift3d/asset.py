"""The asset: plain data that the reconstructor produces and the USD writer stores.

Nothing here imports ``pxr``; :mod:`lift3d.usd` turns an :class:`Asset` into a
USD asset folder (``docs/DESIGN.md``, section 4) and reads one back.

Frames and units: positions in metres in the asset's frame (+Y up; see
:mod:`lift3d.camera`). Texture coordinates follow USD's ``st`` convention:
``(0, 0)`` is the bottom-left corner of the texture image, ``(1, 1)`` the
top-right. Texture images are stored top row first (as Pillow reads them),
8-bit sRGB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .camera import Camera

MaterialKind = Literal["paint", "rubber", "glass", "lamp", "generic"]


@dataclass
class MaterialSpec:
    """A UsdPreviewSurface material, described by intent.

    Attributes:
        kind: what the surface is; glass gets low roughness and opacity < 1,
            a lamp gets an emissive colour, rubber is dark and rough.
        base_color: linear RGB in [0, 1], used where there is no texture.
        textured: if True, diffuseColor comes from the asset's albedo texture.
        roughness, metallic, opacity: UsdPreviewSurface inputs in [0, 1].
        emissive_color: linear RGB, (0, 0, 0) for non-emitters.
    """

    kind: MaterialKind = "generic"
    base_color: tuple[float, float, float] = (0.5, 0.5, 0.5)
    textured: bool = True
    roughness: float = 0.5
    metallic: float = 0.0
    opacity: float = 1.0
    emissive_color: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @classmethod
    def preset(cls, kind: MaterialKind, textured: bool = True) -> "MaterialSpec":
        """Sensible defaults per kind (car paint, tyre rubber, glass, lamp, generic)."""
        table: dict[str, dict[str, Any]] = {
            "paint": dict(base_color=(0.6, 0.6, 0.6), roughness=0.35, metallic=0.2),
            "rubber": dict(base_color=(0.03, 0.03, 0.03), roughness=0.9),
            "glass": dict(base_color=(0.05, 0.07, 0.08), roughness=0.05, opacity=0.35),
            "lamp": dict(base_color=(0.9, 0.9, 0.85), roughness=0.2, emissive_color=(4.0, 3.9, 3.6)),
            "generic": dict(base_color=(0.5, 0.5, 0.5), roughness=0.6),
        }
        return cls(kind=kind, textured=textured, **table[kind])


@dataclass
class Part:
    """A named set of faces with a semantic label and a material.

    Attributes:
        name: prim-safe unique name, e.g. ``wheel_fl``.
        label: semantic class (taxonomy ``class``), e.g. ``wheel``, ``body``,
            ``window``, ``headlight``, ``taillight``, ``object``.
        faces: (K,) int32 indices into :attr:`Asset.faces`.
        material: key into :attr:`Asset.materials`.
    """

    name: str
    label: str
    faces: np.ndarray
    material: str

    def __post_init__(self) -> None:
        self.faces = np.asarray(self.faces, dtype=np.int32).reshape(-1)


@dataclass
class Asset:
    """A textured, part-labelled triangle mesh with its source cameras.

    Attributes:
        name: prim-safe asset name; becomes the folder, file and defaultPrim name.
        points: (V, 3) float32 vertex positions, metres.
        faces: (F, 3) int32 vertex indices, counter-clockwise seen from outside.
        uv: (T, 2) float32 texture coordinates (USD ``st`` convention).
        uv_faces: (F, 3) int32 indices into ``uv`` per face corner (face-varying
            UVs, which allow seams); ``None`` means ``uv`` is per vertex (T == V).
        texture: (H, W, 3) or (H, W, 4) uint8 sRGB albedo image, or ``None``.
        parts: partition of the faces (every face in exactly one part).
        materials: material name -> spec; every ``Part.material`` must exist here.
        cameras: the input views (``Cameras/<photo>`` prims, named after each camera's ``name``).
        provenance: JSON-serialisable record (source digests, settings, version, timings, metrics).
    """

    name: str
    points: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    uv_faces: np.ndarray | None = None
    texture: np.ndarray | None = None
    parts: list[Part] = field(default_factory=list)
    materials: dict[str, MaterialSpec] = field(default_factory=dict)
    cameras: list[Camera] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, dtype=np.float32).reshape(-1, 3)
        self.faces = np.asarray(self.faces, dtype=np.int32).reshape(-1, 3)
        self.uv = np.asarray(self.uv, dtype=np.float32).reshape(-1, 2)
        if self.uv_faces is not None:
            self.uv_faces = np.asarray(self.uv_faces, dtype=np.int32).reshape(-1, 3)
        if not self.parts:
            self.parts = [Part("object", "object", np.arange(len(self.faces)), "object")]
            self.materials.setdefault("object", MaterialSpec.preset("generic"))

    def validate(self) -> None:
        """Raise ``ValueError`` with a precise message if the data is inconsistent."""
        v, f = len(self.points), len(self.faces)
        if v == 0 or f == 0:
            raise ValueError("asset has no geometry")
        if not np.all(np.isfinite(self.points)):
            raise ValueError("asset points contain NaN or infinity")
        if self.faces.min() < 0 or self.faces.max() >= v:
            raise ValueError("face index out of range")
        if self.uv_faces is None:
            if len(self.uv) != v:
                raise ValueError(f"per-vertex uv needs {v} entries, got {len(self.uv)}")
        else:
            if self.uv_faces.shape != self.faces.shape:
                raise ValueError("uv_faces must have the same shape as faces")
            if self.uv_faces.min() < 0 or self.uv_faces.max() >= len(self.uv):
                raise ValueError("uv index out of range")
        if self.texture is not None:
            t = np.asarray(self.texture)
            if t.dtype != np.uint8 or t.ndim != 3 or t.shape[2] not in (3, 4):
                raise ValueError("texture must be an (H, W, 3|4) uint8 image")
        seen = np.zeros(f, dtype=np.int32)
        names = set()
        for part in self.parts:
            if part.name in names:
                raise ValueError(f"duplicate part name {part.name!r}")
            names.add(part.name)
            if part.material not in self.materials:
                raise ValueError(f"part {part.name!r} uses unknown material {part.material!r}")
            if len(part.faces) and (part.faces.min() < 0 or part.faces.max() >= f):
                raise ValueError(f"part {part.name!r} has a face index out of range")
            np.add.at(seen, part.faces, 1)
        if np.any(seen != 1):
            raise ValueError("parts must partition the faces: each face in exactly one part")
