"""Draw the Kit extension's icon (256x256) and preview image (1280x720) with Pillow.

Usage::

    python tools/make_ext_images.py [--out exts/lift3d.reconstruct/data]

The icon is a stylised car with its parts in the colours lift3d's panel uses
(body, windows, lights, wheels); the preview shows the idea of the extension:
a photo on the left, the part-segmented 3D car on the right. The demo's
rendered output may replace preview.png later; this script stays as the fallback.
Both files are written atomically.
"""

from __future__ import annotations

import argparse
import io
import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from lift3d.atomic import write_bytes_atomic

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "exts" / "lift3d.reconstruct" / "data"

BODY = (118, 185, 0)        # NVIDIA-like green paint
WINDOW = (120, 190, 230)
HEADLIGHT = (255, 236, 150)
TAILLIGHT = (220, 40, 40)
TYRE = (34, 34, 38)
RIM = (170, 170, 178)
INK = (235, 238, 242)


def _car(draw: ImageDraw.ImageDraw, x: float, y: float, length: float, wire: bool = False) -> None:
    """Side view of a car, nose to the right; (x, y) is the rear-bottom corner, ``length`` in pixels."""
    s = length / 100.0

    def p(u: float, v: float) -> tuple[float, float]:
        return (x + u * s, y - v * s)

    body = [p(0, 8), p(0, 24), p(4, 28), p(24, 30), p(36, 44), p(66, 44), p(80, 30), p(96, 27), p(100, 20),
            p(100, 8)]
    glass = [p(27, 30), p(38, 41), p(50, 41), p(50, 30)], [p(53, 30), p(53, 41), p(64, 41), p(76, 30)]
    width = max(1, int(1.2 * s))
    if wire:
        draw.polygon(body, outline=BODY, width=width)
        for pane in glass:
            draw.polygon(pane, outline=WINDOW, width=width)
    else:
        draw.polygon(body, fill=BODY)
        for pane in glass:
            draw.polygon(pane, fill=WINDOW)
    draw.polygon([p(95, 25), p(99, 21), p(99, 17), p(94, 19)], fill=HEADLIGHT)
    draw.polygon([p(0.5, 23), p(3.5, 26), p(3.5, 19), p(0.5, 18)], fill=TAILLIGHT)
    for cx in (20, 80):
        cx_, cy_ = p(cx, 8)
        r_out, r_in = 10 * s, 5 * s
        if wire:
            draw.ellipse([cx_ - r_out, cy_ - r_out, cx_ + r_out, cy_ + r_out], outline=RIM, width=width)
            for k in range(6):
                a = k * math.pi / 3
                draw.line([cx_, cy_, cx_ + r_out * math.cos(a), cy_ + r_out * math.sin(a)], fill=RIM, width=width)
        else:
            draw.ellipse([cx_ - r_out, cy_ - r_out, cx_ + r_out, cy_ + r_out], fill=TYRE)
            draw.ellipse([cx_ - r_in, cy_ - r_in, cx_ + r_in, cy_ + r_in], fill=RIM)


def _gradient(size: tuple[int, int], top: tuple[int, int, int], bottom: tuple[int, int, int]) -> Image.Image:
    w, h = size
    column = Image.new("RGB", (1, h))
    for j in range(h):
        t = j / max(1, h - 1)
        column.putpixel((0, j), tuple(int(a + (b - a) * t) for a, b in zip(top, bottom)))
    return column.resize((w, h))


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def make_icon(size: int = 256) -> Image.Image:
    """The extension icon: a car on a dark rounded tile."""
    scale = 4  # draw large, then downsample for smooth edges
    big = size * scale
    tile = _gradient((big, big), (44, 48, 56), (20, 22, 26))
    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).rounded_rectangle([0, 0, big - 1, big - 1], radius=big // 6, fill=255)
    icon = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    icon.paste(tile, (0, 0), mask)
    draw = ImageDraw.Draw(icon)
    draw.line([0.1 * big, 0.74 * big, 0.9 * big, 0.74 * big], fill=(90, 96, 106), width=scale * 3)
    _car(draw, 0.1 * big, 0.72 * big, 0.8 * big)
    return icon.resize((size, size), Image.LANCZOS)


def make_preview(width: int = 1280, height: int = 720) -> Image.Image:
    """The extension preview: "photo in, part-segmented 3D car out"."""
    img = _gradient((width, height), (36, 40, 48), (14, 15, 18)).convert("RGBA")
    draw = ImageDraw.Draw(img)
    # Left: the "photograph" (a framed, filled car).
    frame = (80, 170, 580, 550)
    draw.rectangle(frame, fill=(196, 204, 214), outline=INK, width=4)
    draw.rectangle((84, 430, 576, 546), fill=(150, 150, 150))
    _car(draw, 120, 470, 420)
    # Arrow.
    draw.polygon([(620, 340), (680, 340), (680, 315), (730, 360), (680, 405), (680, 380), (620, 380)], fill=BODY)
    # Right: the reconstruction, parts outlined, with a ground grid.
    for k in range(9):
        gx = 790 + k * 50
        draw.line([gx, 480, gx - 60 + k * 10, 560], fill=(70, 76, 86), width=2)
    draw.line([760, 480, 1220, 480], fill=(70, 76, 86), width=2)
    _car(draw, 790, 470, 420, wire=True)
    title, sub = "lift3d Reconstruct", "photo in  ->  textured, part-segmented USD asset out"
    draw.text((80, 60), title, fill=INK, font=_font(56))
    draw.text((80, 640), sub, fill=(180, 186, 196), font=_font(30))
    legend = [("body", BODY), ("window", WINDOW), ("headlight", HEADLIGHT), ("taillight", TAILLIGHT),
              ("wheel", RIM)]
    lx, font = 730, _font(20)
    for label, colour in legend:
        draw.rectangle((lx, 600, lx + 18, 618), fill=colour)
        draw.text((lx + 24, 598), label, fill=INK, font=font)
        lx += 24 + int(draw.textlength(label, font=font)) + 12
    return img.convert("RGB")


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for icon.png and preview.png")
    args = parser.parse_args(argv)
    write_bytes_atomic(args.out / "icon.png", _png_bytes(make_icon()))
    write_bytes_atomic(args.out / "preview.png", _png_bytes(make_preview()))
    print(args.out / "icon.png")
    print(args.out / "preview.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
