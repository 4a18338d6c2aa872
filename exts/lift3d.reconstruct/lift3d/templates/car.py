"""The parametric car: a lofted body on four tyres, its body shapes and its shape modes.

The mesh is generated from a few numbers (no scanned or downloaded model is
involved). ``tools/make_templates.py`` stores the default car, with its UV
atlas, as the car template; at run time the same generator rebuilds other
bodies with the template's topology (the body shapes of the camera search, the
shape modes of the fit and the procedural vehicles of :mod:`.vehicles`).

The car is a *lofted body*: cross-sections along Z (rear ``-L/2`` to front
``+L/2``), each a rounded rectangle (a superellipse) whose top follows a side
profile (bumper, trunk, rear window, roof, windscreen, hood, nose) and whose
upper part narrows above the belt line (tumblehome), closed by two caps; the
four wheels are separate closed tyres (axis along X) placed by a
:class:`lift3d.templates.WheelRig`. All coordinates are metres in the canonical
frame (+Y up, front +Z, left +X, ground ``y = 0``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from .model import Template, WheelRig


@dataclass
class CarParams:
    """Car template parameters (metres unless noted; fractions are of ``height``).

    ``wheel_outset`` is how far the tyres' outer faces stand out of the body's sides
    (negative: tucked inside), which sets the track from the width. ``belt``, ``hood``,
    ``trunk``, ``nose`` (front face top) and ``tail`` (rear face top) are heights as
    fractions of ``height``; ``rear_window_base``, ``roof_start``, ``roof_end`` and
    ``windscreen_base`` are stations as fractions of the length from the rear
    (increasing, inside (0.03, 0.96)). ``boxiness`` is the cross-sections'
    superellipse exponent (2: oval, 5: a car, 10: a bus), ``taper`` how much the plan
    narrows at both ends (fraction of the width) and ``rear_wheel_scale`` the rear
    tyres' radius over the front ones' (tractors).
    """

    length: float = 4.5
    width: float = 1.8
    height: float = 1.45
    clearance: float = 0.17
    belt: float = 0.64
    hood: float = 0.62
    trunk: float = 0.66
    roof_start: float = 0.34
    roof_end: float = 0.60
    windscreen_base: float = 0.76
    rear_window_base: float = 0.20
    tumblehome: float = 0.80
    wheelbase: float = 2.70
    front_axle_offset: float = 0.05
    wheel_radius: float = 0.33
    wheel_width: float = 0.22
    wheel_outset: float = 0.02
    nose: float = 0.50
    tail: float = 0.58
    boxiness: float = 5.0
    taper: float = 0.14
    rear_wheel_scale: float = 1.0
    stations: int = 44
    ring: int = 32
    wheel_segments: int = 16


def _smooth(values: np.ndarray, passes: int = 3) -> np.ndarray:
    """Light [1 2 1] smoothing along a profile, keeping the end values."""
    v = values.copy()
    for _ in range(passes):
        v[1:-1] = 0.25 * v[:-2] + 0.5 * v[1:-1] + 0.25 * v[2:]
    return v


def _side_profile(u: np.ndarray, p: CarParams) -> tuple[np.ndarray, np.ndarray]:
    """Top and bottom heights (metres) at normalised stations ``u`` in [0, 1] (rear to front)."""
    H = p.height
    top_u = [0.0, 0.03, p.rear_window_base, p.roof_start, p.roof_end, p.windscreen_base, 0.96, 1.0]
    top_y = [p.tail, p.trunk, p.trunk + 0.03, 1.0, 1.0, p.hood + 0.04, p.hood, p.nose]
    bot_u = [0.0, 0.05, 0.12, 0.88, 0.95, 1.0]
    end, sill = max(0.30, p.clearance + 0.13), max(0.20, p.clearance + 0.03)
    bot_y = [end, sill, p.clearance, p.clearance, sill, end]
    top = _smooth(np.interp(u, top_u, np.asarray(top_y) * H))
    bottom = _smooth(np.interp(u, bot_u, bot_y))
    return top, bottom


def _plan_halfwidth(u: np.ndarray, p: CarParams) -> np.ndarray:
    """Half-width (metres) at the belt line along the car: rounded towards both ends."""
    e = np.clip((np.abs(2.0 * u - 1.0) - 0.84) / 0.16, 0.0, 1.0)
    return 0.5 * p.width * (1.0 - p.taper + p.taper * np.sqrt(1.0 - e * e))


def _body(p: CarParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lofted body: (V, 3) points, (F, 3) faces, (N, M) station/ring vertex indices."""
    n, m = p.stations, p.ring
    u = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, n))  # denser at both ends
    z = (u - 0.5) * p.length
    top, bottom = _side_profile(u, p)
    half = _plan_halfwidth(u, p)
    belt = p.belt * p.height
    # Tumblehome: the greenhouse narrows in proportion to how far the top rises above the belt.
    rise = np.clip((top - belt) / (0.3 * p.height), 0.0, 1.0)
    half_top = half * (1.0 - (1.0 - p.tumblehome) * rise)
    # Dense half profile (top centre -> +X side -> bottom centre), resampled uniformly by arc length
    # so the ring vertices are evenly spread; the -X half is its mirror image.
    phi = np.linspace(0.0, np.pi, 721)
    s, t = np.sin(phi), np.cos(phi)
    expo = 2.0 / p.boxiness  # superellipse exponent 5: boxy with rounded corners
    sx = np.abs(s) ** expo
    ty = np.sign(t) * np.abs(t) ** expo
    pts = np.zeros((n, m, 3))
    halfring = m // 2
    for i in range(n):
        y = bottom[i] + 0.5 * (ty + 1.0) * (top[i] - bottom[i])
        above = np.clip((y - belt) / max(top[i] - belt, 1e-6), 0.0, 1.0) if top[i] > belt else np.zeros_like(y)
        hw = half[i] - (half[i] - half_top[i]) * above
        # Round the lower edge inwards a little so the tyres show below the sills.
        below = np.clip((bottom[i] + 0.12 - y) / 0.12, 0.0, 1.0)
        x = sx * hw * (1.0 - 0.06 * below)
        arc = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(x), np.diff(y)))])
        target = np.linspace(0.0, arc[-1], halfring + 1)
        xs, ys = np.interp(target, arc, x), np.interp(target, arc, y)
        xs[0] = xs[-1] = 0.0
        pts[i, : halfring + 1, 0], pts[i, : halfring + 1, 1] = xs, ys
        pts[i, halfring + 1:, 0], pts[i, halfring + 1:, 1] = -xs[1:-1][::-1], ys[1:-1][::-1]
        pts[i, :, 2] = z[i]
    pts[np.abs(pts[..., 0]) < 1e-9, 0] = 0.0
    grid = np.arange(n * m).reshape(n, m)
    faces = []
    for i in range(n - 1):
        for k in range(m):
            a, b = grid[i, k], grid[i, (k + 1) % m]
            c, d = grid[i + 1, (k + 1) % m], grid[i + 1, k]
            # Mirror-symmetric triangulation: the diagonal flips on the -X half.
            faces += [(a, b, c), (a, c, d)] if k < m // 2 else [(a, b, d), (b, c, d)]
    points = pts.reshape(-1, 3)
    rear = len(points)
    front = rear + 1
    centre_r = np.array([0.0, pts[0, :, 1].mean(), z[0]])
    centre_f = np.array([0.0, pts[-1, :, 1].mean(), z[-1]])
    points = np.vstack([points, centre_r, centre_f])
    for k in range(m):
        faces.append((rear, grid[0, (k + 1) % m], grid[0, k]))
        faces.append((front, grid[-1, k], grid[-1, (k + 1) % m]))
    faces = np.asarray(faces, dtype=np.int64)
    if signed_volume(points, faces) < 0:
        faces = faces[:, ::-1]
    return points, faces, grid


def signed_volume(points: np.ndarray, faces: np.ndarray) -> float:
    """Signed volume (m^3) of a closed mesh; positive when faces wind counter-clockwise from outside."""
    a, b, c = points[faces[:, 0]], points[faces[:, 1]], points[faces[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def _unit_tyre(segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit tyre (axis X, for the LEFT side: outer face at +x): (K, 3) local coords and (F, 3) faces.

    Local coordinates ``(a, b, c)`` as in :class:`lift3d.templates.WheelRig`: rings at
    ``a = -0.5 .. 0.5`` (width fractions) with radius factors giving a rounded tread
    and a recessed hub, plus a centre vertex on each side face.
    """
    rings = [(-0.5, 0.70), (-0.5, 0.93), (-0.42, 1.0), (0.42, 1.0), (0.5, 0.93), (0.5, 0.70)]
    ang = 2.0 * np.pi * np.arange(segments) / segments
    local = [np.stack([np.full(segments, a), r * np.cos(ang), r * np.sin(ang)], axis=1) for a, r in rings]
    local = np.concatenate(local + [np.array([[-0.46, 0.0, 0.0], [0.46, 0.0, 0.0]])])
    faces = []
    for j in range(len(rings) - 1):
        for k in range(segments):
            a, b = j * segments + k, j * segments + (k + 1) % segments
            c, d = b + segments, a + segments
            faces += [(a, b, c), (a, c, d)]
    inner, outer = len(rings) * segments, len(rings) * segments + 1
    last = (len(rings) - 1) * segments
    for k in range(segments):
        faces.append((inner, (k + 1) % segments, k))
        faces.append((outer, last + k, last + (k + 1) % segments))
    faces = np.asarray(faces, dtype=np.int64)
    if signed_volume(local, faces) < 0:
        faces = faces[:, ::-1]
    return local.astype(np.float32), faces


def car_geometry(p: CarParams) -> tuple[np.ndarray, np.ndarray, np.ndarray, WheelRig]:
    """The car's mesh without atlas: (V, 3) points, (F, 3) faces, (F,) part name per face, wheel rig."""
    body_pts, body_faces, _ = _body(p)
    local, tyre_faces = _unit_tyre(p.wheel_segments)
    half_w = float(_plan_halfwidth(np.array([0.5]), p)[0])
    track = 2.0 * (half_w - 0.5 * p.wheel_width + p.wheel_outset)
    axle_z = np.array([0.5 * p.wheelbase + p.front_axle_offset, -0.5 * p.wheelbase + p.front_axle_offset])
    rig_pts = WheelRig(np.zeros((2, 0), np.int64), np.zeros((2, 0), np.int64), local, axle_z,
                       p.wheel_radius, track, p.wheel_width).points(axle_z, p.wheel_radius, track, p.wheel_width)
    if p.rear_wheel_scale != 1.0:  # larger rear tyres (tractors), still round and on the ground
        rear = WheelRig(np.zeros((2, 0), np.int64), np.zeros((2, 0), np.int64), local, axle_z,
                        p.wheel_radius, track, p.wheel_width).points(
            axle_z, p.wheel_radius * p.rear_wheel_scale, track, p.wheel_width)
        rig_pts[[1, 3]] = rear[[1, 3]]
    points = [body_pts]
    faces = [body_faces]
    face_names = [np.full(len(body_faces), "body", dtype=object)]
    k = len(local)
    offset = len(body_pts)
    starts = {}
    # rig order: fl, rl, fr, rr
    for wheel, name in zip(rig_pts, ("wheel_fl", "wheel_rl", "wheel_fr", "wheel_rr")):
        starts[name] = offset
        points.append(wheel)
        f = tyre_faces if name.endswith("l") else tyre_faces[:, ::-1]
        faces.append(f + offset)
        face_names.append(np.full(len(f), name, dtype=object))
        offset += k
    points = np.vstack(points).astype(np.float64)
    faces = np.vstack(faces).astype(np.int64)
    names = _label_body(points, faces, np.concatenate(face_names), p)
    rig = WheelRig(left=np.stack([np.arange(k) + starts["wheel_fl"], np.arange(k) + starts["wheel_rl"]]),
                   right=np.stack([np.arange(k) + starts["wheel_fr"], np.arange(k) + starts["wheel_rr"]]),
                   local=local, axle_z=axle_z, radius=p.wheel_radius, track=track, width=p.wheel_width)
    return points, faces, names, rig


BODY_SHAPES: dict[str, dict[str, float]] = {
    "sedan": {},
    "hatchback": {"height": 1.55, "rear_window_base": 0.06, "roof_start": 0.2, "roof_end": 0.62, "trunk": 0.78},
    "van": {"height": 1.9, "belt": 0.55, "hood": 0.55, "trunk": 0.93, "rear_window_base": 0.05,
            "roof_start": 0.08, "roof_end": 0.66, "windscreen_base": 0.8},
    # Two-wheeler: the left and right tyres of each axle sit side by side as one tyre on the
    # centre line (track = tyre width), under a narrow body of seat, tank and handlebars.
    "two_wheeler": {"length": 2.2, "width": 0.5, "height": 1.15, "clearance": 0.3, "belt": 0.5, "hood": 0.55,
                    "trunk": 0.62, "rear_window_base": 0.3, "roof_start": 0.6, "roof_end": 0.75,
                    "windscreen_base": 0.85, "tumblehome": 1.2, "wheelbase": 1.45, "front_axle_offset": 0.0,
                    "wheel_radius": 0.32, "wheel_width": 0.08, "wheel_outset": -0.17},
}
"""Body shapes the camera search tries (overrides of the template's :class:`CarParams`); the
two-wheeler keeps the car's parts (its four tyres pair up into two, side by side) so every shape
shares the template's topology, labels and atlas."""


@dataclass(frozen=True)
class BodySearch:
    """How the single-photo camera search treats one body shape.

    Attributes:
        scale_range: (low, high) bounds of the refined width and height scale factors.
        penalty: relative loss handicap when hypotheses are ranked (0: none).
    """

    scale_range: tuple[tuple[float, float], tuple[float, float]] = ((0.6, 1.7), (0.6, 1.7))
    penalty: float = 0.0


BODY_SEARCH = {"two_wheeler": BodySearch(scale_range=((0.7, 1.3), (0.7, 1.3)), penalty=0.1)}
"""Camera-search settings per body shape (others: :class:`BodySearch` defaults). A two-wheeler stays
narrow and low, or, made wide and tall and seen closer, it passes for a short car; and as the car
category is mostly cars while a side-on silhouette fits a two-wheeler nearly as well, a near tie goes
to a car body."""
WINDOWLESS_SHAPES = frozenset({"two_wheeler"})
"""Body shapes whose template window faces are bodywork (no glass material)."""


def car_shapes(template: Template) -> dict[str, np.ndarray]:
    """name -> (V, 3) points of each :data:`BODY_SHAPES` body with ``template``'s topology.

    Built from the parameters stored with the template; raises ``ValueError`` if
    a shape's mesh does not have the template's faces (the generator changed
    since the template was written: run ``tools/make_templates.py``).
    """
    known = {f.name for f in fields(CarParams)}
    base = CarParams(**{k: v for k, v in template.params.items() if k in known})
    out = {}
    for name, overrides in BODY_SHAPES.items():
        points, faces, _, _ = car_geometry(replace(base, **overrides))
        if faces.shape != template.faces.shape or not np.array_equal(faces, template.faces):
            raise ValueError(f"body shape {name!r} does not match the car template's topology")
        out[name] = points.astype(np.float32)
    return out


def _label_body(points: np.ndarray, faces: np.ndarray, names: np.ndarray, p: CarParams) -> np.ndarray:
    """Split the body faces into body, window (greenhouse sides and screens) and lamps, symmetrically."""
    names = names.copy()
    body = names == "body"
    tri = points[faces]
    centre = tri.mean(axis=1)
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    # The loft's faces come in quads (two consecutive triangles): label whole quads.
    quads = 2 * (p.stations - 1) * p.ring
    centre[:quads] = np.repeat(0.5 * (centre[0:quads:2] + centre[1:quads:2]), 2, axis=0)
    normal[:quads] = np.repeat(normal[0:quads:2] + normal[1:quads:2], 2, axis=0)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-12)
    H, L = p.height, p.length
    u = centre[:, 2] / L + 0.5
    belt = p.belt * H
    glass = body & (centre[:, 1] > belt + 0.04 * H) & (np.abs(normal[:, 1]) < 0.9)
    glass &= (u > p.rear_window_base - 0.02) & (u < p.windscreen_base + 0.01) & (centre[:, 1] < 0.985 * H)
    names[glass] = "window"
    ax = np.abs(centre[:, 0])
    half = 0.5 * p.width
    lamp_zone = body & (ax > 0.45 * half) & (ax < 0.93 * half)
    lamp_zone &= (centre[:, 1] > (p.hood - 0.16) * H) & (centre[:, 1] < (p.hood - 0.02) * H)
    head = lamp_zone & (u > 0.955) & (normal[:, 2] > 0.3)
    tail = lamp_zone & (u < 0.045) & (normal[:, 2] < -0.3) & (centre[:, 1] > (p.trunk - 0.2) * H)
    side = np.where(centre[:, 0] >= 0, "l", "r")
    for mask, stem in ((head, "headlight"), (tail, "taillight")):
        for s in ("l", "r"):
            names[mask & (side == s)] = f"{stem}_{s}"
    return names


SHAPE_MODES: dict[str, float] = {
    "clearance": 0.05, "belt": 0.05, "hood": 0.06, "trunk": 0.08, "roof_start": 0.06, "roof_end": 0.06,
    "windscreen_base": 0.05, "rear_window_base": 0.05, "wheelbase": 0.25, "front_axle_offset": 0.12,
    "wheel_radius": 0.06,
}
"""Car parameters the single-photo camera search refines, with one *unit* each (their typical spread
across passenger cars, in the parameter's own units: metres or fractions of the height)."""


def car_shape_basis(template: Template, shape: str) -> np.ndarray:
    """(K, V, 3) displacement (metres) of the ``shape`` body per unit of each :data:`SHAPE_MODES` parameter.

    A linearised parametric family around one :data:`BODY_SHAPES` body (in the spirit of
    a morphable model's blend shapes, here from the procedural generator instead of
    data): ``points + sum_k c_k basis[k]`` moves the roof, screens, hood, trunk, sills and
    wheels continuously with the template's topology, so the coefficients ``c`` can be
    optimised through the soft silhouette jointly with the camera. Central differences
    with a quarter of each unit keep every perturbed profile valid (monotone stations).
    """
    known = {f.name for f in fields(CarParams)}
    base = replace(CarParams(**{k: v for k, v in template.params.items() if k in known}), **BODY_SHAPES[shape])
    basis = []
    for name, unit in SHAPE_MODES.items():
        h = 0.25 * unit
        value = getattr(base, name)
        hi = car_geometry(replace(base, **{name: value + h}))[0]
        lo = car_geometry(replace(base, **{name: value - h}))[0]
        if hi.shape != template.points.shape:
            raise ValueError(f"body shape {shape!r} does not match the car template's topology")
        basis.append((hi - lo) * (unit / (2.0 * h)))
    return np.stack(basis)
