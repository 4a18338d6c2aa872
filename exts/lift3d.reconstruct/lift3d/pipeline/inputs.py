"""The run's first stages: load and validate the inputs, then find each photo's object mask.

Everything a user can get wrong is checked by :func:`lift3d.preflight.check_request`
before anything is decoded; decoding validates again (a file can change or be
truncated after its header was read).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..camera import Camera
from ..errors import InputError
from ..preflight import check_request
from ..requests import ReconstructRequest
from ..settings import Category, Preset, Settings
from ..templates import Template, load_template


@dataclass
class Inputs:
    """A validated request, decoded.

    Attributes:
        request: the request as given.
        settings, preset, category: the settings it runs with.
        template: the category's template (its ``symmetric`` flag from the category).
        images: the decoded photos (:class:`lift3d.io.images.LoadedImage`).
        cameras: the photos' given cameras, rescaled to the decoded sizes, or ``None``.
        out_dir: the folder that receives the asset folder.
    """

    request: ReconstructRequest
    settings: Settings
    preset: Preset
    category: Category
    template: Template
    images: list
    cameras: list[Camera] | None
    out_dir: Path

    @property
    def is_car(self) -> bool:
        """Whether the template is a vehicle (it has a wheel rig)."""
        return self.template.wheels is not None


def fit_camera_to_image(camera: Camera, image: Path, size: tuple[int, int]) -> Camera:
    """``camera`` rescaled to the decoded image ``size`` (width, height); InputError if the aspect differs."""
    if (camera.width, camera.height) == tuple(size):
        return camera
    if abs(camera.width / camera.height - size[0] / size[1]) > 0.01:
        raise InputError(f"the camera of {image} is {camera.width}x{camera.height} pixels but the image is "
                         f"{size[0]}x{size[1]}, a different aspect ratio")
    return camera.scaled(*size)


def load_inputs(request: ReconstructRequest, settings: Settings | None = None) -> Inputs:
    """Validate ``request`` (InputError / ConfigError, nothing written) and decode its files."""
    from ..io.images import load_image
    from ..io.views import cameras_for_images

    settings = check_request(request, settings)
    preset = settings.preset(request.preset)
    category = settings.category(request.category)
    out_dir = Path(request.out_dir) if request.out_dir is not None else Path(settings.output.folder)
    images = [load_image(p) for p in request.images]
    cameras = cameras_for_images(request.views, request.images) if request.views is not None else None
    if cameras is not None:
        cameras = [fit_camera_to_image(cam, img.path, img.size) for cam, img in zip(cameras, images)]
    template = load_template(settings.template_path(request.category))
    if template.symmetric != category.symmetric:  # the category's setting decides (config/categories.toml)
        template = dataclasses.replace(template, symmetric=category.symmetric)
    return Inputs(request, settings, preset, category, template, images, cameras, out_dir)


@dataclass
class ObjectMask:
    """A single photo's mask computed before the run (:mod:`.objects`), given to it explicitly: one
    object of a photo that holds several, or the photo's whole mask when it holds one.

    Attributes:
        mask: (H, W) bool, this object only (the others masked out).
        info: the mask's record (``source``, ``objects``, ``confidence`` ...; ``object``: 1-based rank by size).
        reference: the largest object's camera (in its asset frame), or ``None`` for the largest
            itself; the asset is then placed in that object's frame (:func:`.output.placement`).
    """

    mask: np.ndarray
    info: dict
    reference: Camera | None = None


def object_masks_info(inputs: Inputs, given: ObjectMask | None = None) -> tuple[list[np.ndarray], list[dict]]:
    """The object mask per photo (its alpha, the given mask, or automatic foreground) and where each
    came from (:func:`lift3d.io.images.object_mask_info`); ``given`` replaces a single photo's."""
    from ..io.images import object_mask_info

    if given is not None and len(inputs.images) == 1:
        if given.mask.shape != (inputs.images[0].height, inputs.images[0].width):
            raise InputError(f"the object mask is {given.mask.shape[1]}x{given.mask.shape[0]} pixels but "
                             f"{inputs.images[0].path} is {inputs.images[0].width}x{inputs.images[0].height}")
        return [np.asarray(given.mask, dtype=bool)], [dict(given.info)]
    pairs = [object_mask_info(img, inputs.request.mask) for img in inputs.images]
    return [m for m, _ in pairs], [info for _, info in pairs]
