"""Albedo texture and materials of a fitted template.

Bake: every input photo is projected onto the fitted mesh's UV atlas with
:func:`lift3d.kernels.bake.bake_texture` (visibility, view-angle and mask-edge
weights); texels no photo sees take the colour of their mirror image across
the object's symmetry plane (for a single photo of a car this is the mirrored
virtual view: the hidden right side gets the visible left side's colours);
the rest is inpainted by push-pull. Colours stay in the photos' sRGB encoding,
which is what the asset's 8-bit albedo stores.

Optional photometric refinement (preset ``photometric_steps``): the texture is
optimised by Adam so :func:`lift3d.kernels.torch_render.render_textured`
reproduces the photos inside their masks (an L1 loss at the working crop).

Materials (UsdPreviewSurface intents, :class:`lift3d.asset.MaterialSpec`):

* body: car paint, textured;
* window: glass, textured, low roughness, opacity < 1;
* headlight: lamp, textured, white emissive; taillight: lamp, textured, red emissive;
* wheel: rubber, **textured** with the baked colours: the photo's tyres and
  rims are a better guess than a uniform black, and where the wheel is unseen
  the bake's mirror and inpainting still give dark tyre colours;
* generic objects: one textured generic material.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ..asset import MaterialSpec, Part
from ..camera import Camera
from ..optim import Adam
from ..kernels.bake import bake_texture
from ..templates import Template
from .crops import crop_camera, crop_image, crop_mask, square_box

MAX_BAKE_SIDE = 1600
"""Photos larger than this (pixels, longer side) are downsampled before baking."""
PHOTOMETRIC_SIZE = 256

_MATERIAL_OF_LABEL = {"body": "paint", "window": "glass", "headlight": "lamp", "taillight": "taillight",
                      "wheel": "rubber", "object": "object"}


def materials() -> dict[str, MaterialSpec]:
    """The material table shared by every reconstruction (name -> spec)."""
    tail = MaterialSpec.preset("lamp")
    tail.base_color, tail.emissive_color = (0.7, 0.05, 0.04), (3.0, 0.15, 0.1)
    return {"paint": MaterialSpec.preset("paint"), "glass": MaterialSpec.preset("glass"),
            "lamp": MaterialSpec.preset("lamp"), "taillight": tail, "rubber": MaterialSpec.preset("rubber"),
            "object": MaterialSpec.preset("generic")}


def parts_of(template: Template, glass: bool = True) -> tuple[list[Part], dict[str, MaterialSpec]]:
    """The asset parts (one per template part, material by label) and the materials they use.

    With ``glass=False`` (a body without windows, e.g. a two-wheeler) the window faces
    join the body and there is no window part.
    """
    table = materials()
    face_part = template.face_part
    if not glass and "window" in template.part_names and "body" in template.part_names:
        face_part = np.where(face_part == template.part_names.index("window"), template.part_names.index("body"),
                             face_part)
    parts = []
    for i, (name, label) in enumerate(zip(template.part_names, template.part_labels)):
        faces = np.nonzero(face_part == i)[0]
        if len(faces):
            parts.append(Part(name, label, faces, _MATERIAL_OF_LABEL.get(label, "object")))
    used = {p.material for p in parts}
    return parts, {k: v for k, v in table.items() if k in used}


def _bake_view(rgb: np.ndarray, mask: np.ndarray, camera: Camera) -> tuple[np.ndarray, np.ndarray, Camera]:
    """Downsample a view whose longer side exceeds :data:`MAX_BAKE_SIDE`."""
    h, w = mask.shape
    factor = MAX_BAKE_SIDE / max(h, w)
    if factor >= 1.0:
        return rgb, mask.astype(np.float32), camera
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    small_rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    return small_rgb, small_mask, camera.scaled(*size)


def bake_albedo(points: np.ndarray, template: Template, views: list[tuple[np.ndarray, np.ndarray, Camera]],
                size: int, symmetry_plane: tuple[float, float, float, float] | None,
                photometric_steps: int = 0, check: Callable[[], None] | None = None,
                progress: Callable[[float], None] | None = None) -> tuple[np.ndarray, float]:
    """Bake the albedo of the fitted mesh.

    Args:
        points: (V, 3) fitted vertices in the asset frame (metres).
        template: the template (faces, atlas).
        views: ``(rgb (H, W, 3) float32 sRGB in [0, 1], mask (H, W) bool, camera)`` per photo.
        size: texture edge in texels.
        symmetry_plane: ``(nx, ny, nz, d)`` of the object's mirror plane in the asset frame, or ``None``.
        photometric_steps: Adam steps of photometric refinement (0: bake only).

    Returns:
        ``(texture (size, size, 3) uint8 sRGB, coverage)``: coverage is the fraction of
        atlas texels seen directly or through the mirror.
    """
    check = check or (lambda: None)
    report = progress or (lambda f: None)
    prepared = [_bake_view(rgb, mask, cam) for rgb, mask, cam in views]
    result = bake_texture(points, template.faces, template.uv, template.uv_faces, prepared, size,
                          symmetry_plane=symmetry_plane)
    texture = np.clip(result.texture, 0.0, 1.0)
    report(0.5)
    if photometric_steps > 0:
        texture = refine_texture(points, template, views, texture, photometric_steps, check, report)
    report(1.0)
    return (np.clip(texture, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), result.coverage


def refine_texture(points: np.ndarray, template: Template, views: list[tuple[np.ndarray, np.ndarray, Camera]],
                   texture: np.ndarray, steps: int, check: Callable[[], None],
                   report: Callable[[float], None]) -> np.ndarray:
    """Photometric refinement of a baked (T, T, 3) texture through the differentiable textured renderer."""
    from ..kernels.torch_render import render_textured

    pts = torch.from_numpy(np.asarray(points, dtype=np.float32))
    uv = torch.from_numpy(template.uv.astype(np.float32))
    tex = torch.nn.Parameter(torch.from_numpy(texture.astype(np.float32).copy()))
    crops = []
    for rgb, mask, cam in views:
        box = square_box(mask)
        crops.append((torch.from_numpy(crop_image(rgb, box, PHOTOMETRIC_SIZE)),
                      torch.from_numpy((crop_mask(mask, box, PHOTOMETRIC_SIZE) > 0.99).astype(np.float32)),
                      crop_camera(cam, box, PHOTOMETRIC_SIZE)))
    opt = Adam([tex], lr=0.01)
    for step in range(steps):
        check()
        opt.zero_grad()
        loss = torch.zeros(())
        for target, mask, cam in crops:
            image, covered = render_textured(pts, template.faces, uv, template.uv_faces, tex, cam,
                                             PHOTOMETRIC_SIZE, PHOTOMETRIC_SIZE, mode="clamp")
            weight = (mask * covered)[..., None]
            loss = loss + ((image - target).abs() * weight).sum() / weight.sum().clamp_min(1.0)
        loss.backward()
        opt.step()
        with torch.no_grad():
            tex.clamp_(0.0, 1.0)
        report(0.5 + 0.5 * (step + 1) / steps)
    return tex.detach().numpy()


@dataclass(frozen=True)
class TextureOptions:
    """The texture stage's options: texture edge (texels) and photometric refinement steps."""

    size: int
    photometric_steps: int

    @classmethod
    def from_settings(cls, preset, settings) -> "TextureOptions":
        return cls(min(preset.texture_size, settings.output.texture_size), preset.photometric_steps)


def texture_stage(points: np.ndarray, template: Template, images: list, masks: list[np.ndarray],
                  cameras: list[Camera], symmetry_plane: tuple[float, float, float, float] | None, body: str,
                  options: TextureOptions, check: Callable[[], None] | None = None,
                  progress: Callable[[float], None] | None = None):
    """The run's texture stage: the baked albedo, its coverage, and the parts with their materials.

    ``body`` is the chosen body shape or type: windowless ones (a two-wheeler) get no glass.
    Returns ``(texture, coverage, parts, materials)``.
    """
    from ..templates.car import WINDOWLESS_SHAPES

    texture, coverage = bake_albedo(points, template, [(img.rgb, m, cam) for img, m, cam in
                                                       zip(images, masks, cameras)],
                                    options.size, symmetry_plane, options.photometric_steps, check, progress)
    parts, materials = parts_of(template, glass=body not in WINDOWLESS_SHAPES)
    return texture, coverage, parts, materials
