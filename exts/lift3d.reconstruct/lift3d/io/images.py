"""Loading input photos and masks, and choosing the object mask.

Object crops at the working resolution are :mod:`lift3d.pipeline.crops`.

Pixel conventions follow :mod:`lift3d.camera`: arrays are indexed ``[v, u]``
(row, column), row 0 at the top, pixel centres at half-integers.

Colour: :func:`load_image` returns **sRGB-encoded** values scaled to [0, 1]
(the file's values divided by their maximum, not linearised). The reconstructor
bakes these values straight into the albedo texture, which the asset stores as
sRGB (see the asset layout in ``docs/DESIGN.md``), so keeping them encoded avoids a lossy round trip;
a stage that needs linear light must convert explicitly.

Alpha, when the file has it, is straight (not premultiplied) coverage in [0, 1].

Bit depth: 16-bit grey PNGs (``I;16``) keep their full precision; Pillow
decodes 16-bit colour PNGs to 8 bits per channel, which is what they are then
worth here (the texture is 8-bit sRGB anyway).
"""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputError

MAX_PIXELS = 64_000_000
"""Largest image (width x height) we decode; bigger files are refused as possible decompression bombs."""

FULL_FRAME_FRACTION = 0.98
"""A mask covering more than this fraction of the image does not isolate an object."""

_FORMATS = ("PNG", "JPEG", "WEBP")


@dataclass
class LoadedImage:
    """A decoded input photo.

    Attributes:
        path: the file it came from.
        rgb: (H, W, 3) float32 sRGB-encoded colour in [0, 1], EXIF orientation applied.
        alpha: (H, W) float32 straight alpha in [0, 1], or ``None`` if the file has none.
        digest: SHA-256 of the file's bytes (hex), recorded in the asset's provenance.
        size: ``(width, height)`` in pixels after the EXIF rotation (the size of ``rgb``).
    """

    path: Path
    rgb: np.ndarray
    alpha: np.ndarray | None
    digest: str
    size: tuple[int, int]

    @property
    def width(self) -> int:
        return self.size[0]

    @property
    def height(self) -> int:
        return self.size[1]


def _read_bytes(path: Path, what: str) -> bytes:
    if path.is_dir():
        raise InputError(f"{what} {path} is a folder, not an image file")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise InputError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    if not data:
        raise InputError(f"{what} {path} is an empty file")
    return data


def _decode(path: Path, data: bytes, what: str) -> Image.Image:
    """Open, size-check and fully decode ``data``; every failure is an InputError naming ``path``."""
    try:
        with warnings.catch_warnings():
            # Damaged metadata (EXIF tags, text chunks): Pillow skips it and decodes the pixels; its
            # UserWarning would be stray stderr lines around the CLI's output.
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=_FORMATS)
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise InputError(f"{what} {path} is {w}x{h} pixels, more than the {MAX_PIXELS // 1_000_000} MP "
                                 "limit")
            im.load()
            im = ImageOps.exif_transpose(im)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{what} {path} is too large to decode safely (more than "
                         f"{MAX_PIXELS // 1_000_000} MP)") from None
    except UnidentifiedImageError:
        raise InputError(f"{what} {path} is not a PNG, JPEG or WebP image") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, TypeError) as exc:
        # Pillow reports damaged headers, chunks and EXIF blocks with any of these.
        raise InputError(f"{what} {path} is corrupt or truncated ({exc})") from None
    if im.width == 0 or im.height == 0:
        raise InputError(f"{what} {path} has no pixels")
    return im


def _channels(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W, 3) colour and (H, W) alpha (or None) as float32 in [0, 1]."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        grey = np.asarray(im, dtype=np.float64)
        grey = np.clip(grey / 65535.0, 0.0, 1.0).astype(np.float32)
        return np.repeat(grey[..., None], 3, axis=2), None
    if mode == "F":
        grey = np.clip(np.asarray(im, dtype=np.float32), 0.0, 1.0)
        return np.repeat(grey[..., None], 3, axis=2), None
    if mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
    elif mode in ("LA", "La", "PA", "RGBa"):
        im = im.convert("RGBA")
    elif mode not in ("RGB", "RGBA"):
        im = im.convert("RGB")  # L, 1, CMYK, YCbCr, ...
    arr = np.asarray(im, dtype=np.float32) / 255.0
    if im.mode == "RGBA":
        return np.ascontiguousarray(arr[..., :3]), np.ascontiguousarray(arr[..., 3])
    return np.ascontiguousarray(arr), None


def load_image(path: Path | str) -> LoadedImage:
    """Decode a PNG, JPEG or WebP photo (8 or 16 bit; RGB, RGBA, L, LA, palette, I;16).

    EXIF orientation is applied. Images above :data:`MAX_PIXELS` are refused
    before decoding. Raises :class:`InputError` (one sentence naming the file)
    for a missing file, a folder, an empty, truncated or corrupt file, or a
    file that is not one of those formats.
    """
    path = Path(path)
    data = _read_bytes(path, "image")
    im = _decode(path, data, "image")
    rgb, alpha = _channels(im)
    return LoadedImage(path=path, rgb=rgb, alpha=alpha, digest=hashlib.sha256(data).hexdigest(),
                       size=(im.width, im.height))


def _check_coverage(mask: np.ndarray, source: str) -> np.ndarray:
    """Refuse an empty or (nearly) full-frame binary mask; ``source`` names where it came from."""
    frac = float(mask.mean()) if mask.size else 0.0
    if not mask.any():
        raise InputError(f"{source} is empty: it marks no object pixels")
    if frac > FULL_FRAME_FRACTION:
        raise InputError(f"{source} covers {frac:.0%} of the image, so it does not separate an object "
                         "from its background")
    return mask


def load_mask(path: Path | str, size: tuple[int, int]) -> np.ndarray:
    """Read a mask image (white = object) for an image of ``size = (width, height)``.

    Any mode and bit depth: a file with a non-trivial alpha channel uses its
    alpha, otherwise its grey value (luminance for colour files); the mask is
    ``value >= 50 %`` of full scale. A mask whose size differs from the image
    but whose aspect ratio matches (within one pixel) is resized with
    nearest-neighbour sampling; a different aspect ratio is an error, as are an
    empty mask and a mask covering more than 98 % of the image.

    Returns:
        (H, W) bool, True on the object.
    """
    path = Path(path)
    data = _read_bytes(path, "mask")
    im = _decode(path, data, "mask")
    rgb, alpha = _channels(im)
    if alpha is not None and float(alpha.min()) < 0.5:
        value = alpha
    else:
        value = rgb @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    mask = value >= 0.5
    width, height = size
    mh, mw = mask.shape
    if (mw, mh) != (width, height):
        if abs(mw * height / mh - width) > 1.0 or abs(mh * width / mw - height) > 1.0:
            raise InputError(f"mask {path} is {mw}x{mh} pixels but the image is {width}x{height}, "
                             "a different aspect ratio")
        import cv2  # here only: the pre-flight checks read this module's limits without OpenCV

        mask = cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
    return _check_coverage(mask, f"mask {path}")


def object_mask(image: LoadedImage, mask_path: Path | str | None = None) -> np.ndarray:
    """The object's (H, W) bool mask for ``image``: the mask of :func:`object_mask_info`."""
    return object_mask_info(image, mask_path)[0]


def object_mask_info(image: LoadedImage, mask_path: Path | str | None = None,
                     keep: str = "largest") -> tuple[np.ndarray, dict]:
    """The object's (H, W) bool mask for ``image`` and where it came from.

    Order of precedence (``docs/DESIGN.md`` section 4, Inputs):

    1. the image's alpha channel (``alpha >= 0.5``) when it is not trivially
       opaque: at most 98 % of the pixels are opaque (a photo saved as RGBA
       with a stray transparent pixel falls through to 2 and 3);
    2. otherwise the mask file ``mask_path`` (see :func:`load_mask`);
    3. otherwise automatic foreground extraction
       (:func:`lift3d.io.foreground.extract_foreground_info`; ``keep="all"`` keeps every
       object it finds instead of the largest).

    The record has ``source`` (``alpha``, ``given`` or ``automatic``), ``objects`` (how many
    separate objects the mask holds, :func:`lift3d.io.foreground.split_objects`) and, for an
    automatic mask, ``confidence`` in [0, 1] with what it is made of.

    Raises :class:`InputError` if the chosen mask is empty or nearly full-frame,
    or if no object can be separated automatically.
    """
    from .foreground import extract_foreground_info, split_objects

    if image.alpha is not None:
        opaque = image.alpha >= 0.5
        if float(opaque.mean()) <= FULL_FRAME_FRACTION:
            mask = _check_coverage(opaque, f"the transparency (alpha channel) of {image.path}")
            return mask, {"source": "alpha", "objects": max(1, len(split_objects(mask)))}
    if mask_path is not None:
        mask = load_mask(mask_path, image.size)
        return mask, {"source": "given", "objects": max(1, len(split_objects(mask)))}
    mask, info = extract_foreground_info(image.rgb, name=str(image.path), keep=keep)
    return mask, {"source": "automatic", **info}
