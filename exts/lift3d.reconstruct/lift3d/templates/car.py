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

import json
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache

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


def _interp_rows(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Row-wise ``np.interp``: (N, K) samples ``x`` of (N, P) curves ``fp`` over increasing (N, P) ``xp``.

    As ``np.interp``, samples outside a row's range take its end values. Each row is shifted by
    its index times the largest span, so the rows become one increasing sequence and a single
    ``np.interp`` serves all of them.
    """
    x = np.clip(x, xp[:, :1], xp[:, -1:])
    span = float((xp[:, -1] - xp[:, 0]).max()) + 1.0
    shift = span * np.arange(len(xp))[:, None]
    return np.interp((x + shift).ravel(), (xp + shift).ravel(), fp.ravel()).reshape(x.shape)


@lru_cache(maxsize=8)
def _loft_faces(n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """(F, 3) faces and (N, M) vertex grid of a loft of ``n`` rings of ``m`` vertices plus two cap centres.

    The caps' centre vertices are ``n * m`` (rear) and ``n * m + 1`` (front). The quads split
    mirror-symmetrically: the diagonal flips on the -X half (``k >= m // 2``). Read-only arrays.
    """
    grid = np.arange(n * m).reshape(n, m)
    a, b = grid[:-1], np.roll(grid, -1, axis=1)[:-1]
    c, d = np.roll(grid, -1, axis=1)[1:], grid[1:]
    plus_x = (np.arange(m) < m // 2)[None, :, None]
    first = np.where(plus_x, np.stack([a, b, c], -1), np.stack([a, b, d], -1))
    second = np.where(plus_x, np.stack([a, c, d], -1), np.stack([b, c, d], -1))
    quads = np.stack([first, second], axis=2).reshape(-1, 3)
    k = np.arange(m)
    rear = np.stack([np.full(m, n * m), grid[0, (k + 1) % m], grid[0, k]], -1)
    front = np.stack([np.full(m, n * m + 1), grid[-1, k], grid[-1, (k + 1) % m]], -1)
    caps = np.stack([rear, front], axis=1).reshape(-1, 3)
    faces = np.concatenate([quads, caps]).astype(np.int64)
    faces.flags.writeable = False
    grid.flags.writeable = False
    return faces, grid


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
    # Dense half profile (top centre -> +X side -> bottom centre) per station (rows), resampled
    # uniformly by arc length so the ring vertices are evenly spread; the -X half is its mirror image.
    phi = np.linspace(0.0, np.pi, 721)
    s, t = np.sin(phi), np.cos(phi)
    expo = 2.0 / p.boxiness  # superellipse exponent 5: boxy with rounded corners
    sx = np.abs(s) ** expo
    ty = np.sign(t) * np.abs(t) ** expo
    top_c, bottom_c = top[:, None], bottom[:, None]
    y = bottom_c + 0.5 * (ty + 1.0) * (top_c - bottom_c)
    above = np.where(top_c > belt, np.clip((y - belt) / np.maximum(top_c - belt, 1e-6), 0.0, 1.0), 0.0)
    hw = half[:, None] - (half - half_top)[:, None] * above
    # Round the lower edge inwards a little so the tyres show below the sills.
    below = np.clip((bottom_c + 0.12 - y) / 0.12, 0.0, 1.0)
    x = sx * hw * (1.0 - 0.06 * below)
    arc = np.concatenate([np.zeros((n, 1)), np.cumsum(np.hypot(np.diff(x), np.diff(y)), axis=1)], axis=1)
    halfring = m // 2
    target = arc[:, -1:] * np.linspace(0.0, 1.0, halfring + 1)
    xs, ys = _interp_rows(target, arc, x), _interp_rows(target, arc, y)
    xs[:, 0] = xs[:, -1] = 0.0
    pts = np.empty((n, m, 3))
    pts[:, : halfring + 1, 0], pts[:, : halfring + 1, 1] = xs, ys
    pts[:, halfring + 1:, 0], pts[:, halfring + 1:, 1] = -xs[:, -2:0:-1], ys[:, -2:0:-1]
    pts[:, :, 2] = z[:, None]
    pts[np.abs(pts[..., 0]) < 1e-9, 0] = 0.0
    faces, grid = _loft_faces(n, m)
    centre_r = np.array([0.0, pts[0, :, 1].mean(), z[0]])
    centre_f = np.array([0.0, pts[-1, :, 1].mean(), z[-1]])
    points = np.vstack([pts.reshape(-1, 3), centre_r, centre_f])
    if signed_volume(points, faces) < 0:
        faces = faces[:, ::-1]
    return points, np.array(faces), np.array(grid)


def signed_volume(points: np.ndarray, faces: np.ndarray) -> float:
    """Signed volume (m^3) of a closed mesh; positive when faces wind counter-clockwise from outside."""
    a, b, c = points[faces[:, 0]], points[faces[:, 1]], points[faces[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


@lru_cache(maxsize=4)
def _unit_tyre(segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit tyre (axis X, for the LEFT side: outer face at +x): (K, 3) local coords and (F, 3) faces (read-only).

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
    local, faces = local.astype(np.float32), np.ascontiguousarray(faces)
    local.flags.writeable = faces.flags.writeable = False  # cached: shared by every car built
    return local, faces


_PARTS = ("body", "wheel_fl", "wheel_rl", "wheel_fr", "wheel_rr")


def _assemble(p: CarParams) -> tuple[np.ndarray, np.ndarray, list[int], WheelRig]:
    """Body and tyres: (V, 3) float64 points, (F, 3) faces, face count per :data:`_PARTS` entry, wheel rig."""
    body_pts, body_faces, _ = _body(p)
    local, tyre_faces = _unit_tyre(p.wheel_segments)
    half_w = float(_plan_halfwidth(np.array([0.5]), p)[0])
    track = 2.0 * (half_w - 0.5 * p.wheel_width + p.wheel_outset)
    axle_z = np.array([0.5 * p.wheelbase + p.front_axle_offset, -0.5 * p.wheelbase + p.front_axle_offset])
    placement = WheelRig(np.zeros((2, 0), np.int64), np.zeros((2, 0), np.int64), local, axle_z,
                         p.wheel_radius, track, p.wheel_width)
    rig_pts = placement.points(axle_z, p.wheel_radius, track, p.wheel_width)
    if p.rear_wheel_scale != 1.0:  # larger rear tyres (tractors), still round and on the ground
        rear = placement.points(axle_z, p.wheel_radius * p.rear_wheel_scale, track, p.wheel_width)
        rig_pts[[1, 3]] = rear[[1, 3]]
    k, nb = len(local), len(body_pts)
    # rig order: fl, rl, fr, rr; the right tyres are mirrored, so their faces wind the other way
    faces = [body_faces] + [(tyre_faces if name.endswith("l") else tyre_faces[:, ::-1]) + nb + i * k
                            for i, name in enumerate(_PARTS[1:])]
    points = np.vstack([body_pts, *rig_pts]).astype(np.float64)
    starts = nb + k * np.arange(4)[:, None] + np.arange(k)[None, :]
    rig = WheelRig(left=starts[[0, 1]], right=starts[[2, 3]], local=local, axle_z=axle_z, radius=p.wheel_radius,
                   track=track, width=p.wheel_width)
    return points, np.vstack(faces).astype(np.int64), [len(f) for f in faces], rig


def car_points(p: CarParams) -> tuple[np.ndarray, np.ndarray]:
    """The car's (V, 3) float64 points and (F, 3) faces, without part labels (cheaper than :func:`car_geometry`)."""
    points, faces, _, _ = _assemble(p)
    return points, faces


def car_geometry(p: CarParams) -> tuple[np.ndarray, np.ndarray, np.ndarray, WheelRig]:
    """The car's mesh without atlas: (V, 3) points, (F, 3) faces, (F,) part name per face, wheel rig."""
    points, faces, counts, rig = _assemble(p)
    names = _label_body(points, faces, np.repeat(np.array(_PARTS, dtype=object), counts), p)
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


def template_car_params(template: Template) -> CarParams:
    """The :class:`CarParams` stored with ``template`` (its other generator entries ignored)."""
    known = {f.name for f in fields(CarParams)}
    return CarParams(**{k: v for k, v in template.params.items() if k in known})


def check_topology(faces: np.ndarray, template: Template, what: str) -> None:
    """ValueError unless ``faces`` are ``template``'s (``what``: the mesh, for the message)."""
    if faces.shape != template.faces.shape or not np.array_equal(faces, template.faces):
        raise ValueError(f"{what} does not match the car template's topology "
                         "(the generator changed since the template was written: run tools/make_templates.py)")


def _template_params(template: Template) -> str:
    """:func:`template_car_params` as a canonical JSON key for the caches below."""
    return json.dumps(asdict(template_car_params(template)), sort_keys=True)


@lru_cache(maxsize=32)
def _shape_points(params: str, shape: str) -> tuple[np.ndarray, np.ndarray]:
    """Cached :func:`car_points` of one :data:`BODY_SHAPES` body over the template parameters ``params`` (JSON)."""
    points, faces = car_points(replace(CarParams(**json.loads(params)), **BODY_SHAPES[shape]))
    return points.astype(np.float32), faces


def car_shapes(template: Template) -> dict[str, np.ndarray]:
    """name -> (V, 3) float32 points of each :data:`BODY_SHAPES` body with ``template``'s topology.

    Built from the parameters stored with the template (cached per parameter set; each call
    returns fresh arrays); raises ``ValueError`` if a shape's mesh does not have the template's
    faces (the generator changed since the template was written: run ``tools/make_templates.py``).
    """
    out = {}
    for name in BODY_SHAPES:
        points, faces = _shape_points(_template_params(template), name)
        check_topology(faces, template, f"body shape {name!r}")
        out[name] = points.copy()
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
    basis, faces = _shape_basis(_template_params(template), shape)
    check_topology(faces, template, f"body shape {shape!r}")
    return basis.copy()


@lru_cache(maxsize=32)
def _shape_basis(params: str, shape: str) -> tuple[np.ndarray, np.ndarray]:
    """Cached (K, V, 3) basis of :func:`car_shape_basis` and the body's (F, 3) faces, over ``params`` (JSON)."""
    base = replace(CarParams(**json.loads(params)), **BODY_SHAPES[shape])
    basis = []
    for name, unit in SHAPE_MODES.items():
        h = 0.25 * unit
        value = getattr(base, name)
        hi, faces = car_points(replace(base, **{name: value + h}))
        lo = car_points(replace(base, **{name: value - h}))[0]
        basis.append((hi - lo) * (unit / (2.0 * h)))
    return np.stack(basis), faces
