"""Procedural vehicles on the car template's topology: the world the learned predictor is trained on.

Every vehicle is the parametric car of :mod:`.car` with parameters drawn from
ranges per body type, plus a smooth, mirror-symmetric random deformation of the
body, so parts, UVs and materials carry over from the car template unchanged.
Sampling is seeded and deterministic (:func:`sample_vehicle` with a
``numpy.random.Generator``).

Ranges follow published dimensions of real vehicles (overall length, width,
height, wheelbase, ground clearance, tyre size): manufacturers' specification
sheets as collected in the Wikipedia articles "Car classification", "Sport
utility vehicle", "Pickup truck", "Minivan", "Box truck", "Bus" and "Tractor";
the EU limits for road vehicles (Directive 96/53/EC: width at most 2.55 m,
height 4 m, a rigid vehicle at most 12 m long); tyre diameters from ISO metric
tyre sizes (a 205/55 R16 car tyre is 0.63 m across, a 315/80 R22.5 truck
tyre 1.07 m, a rear tractor tyre 1.5-1.9 m); open-wheel racers from the FIA
single-seater dimensions (about 5.6 m by 2.0 m, under 1 m high) and
motorcycles from typical road bikes (about 2.1 m long, 1.1-1.3 m high,
1.4-1.5 m wheelbase). Lengths are metres; profile heights are fractions of the
height and profile stations fractions of the length, as in
:class:`lift3d.templates.car.CarParams`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from .car import CarParams, car_points, check_topology, template_car_params
from .model import Template

GENERATOR_VERSION = 1
"""Bumped whenever the same seed would give a different vehicle (a model card records it)."""

Range = tuple[float, float]

BODY_TYPES: dict[str, dict[str, Range]] = {
    "sedan": dict(length=(4.2, 5.1), width=(1.7, 1.95), height=(1.38, 1.52), clearance=(0.12, 0.18),
                  belt=(0.58, 0.68), hood=(0.57, 0.66), trunk=(0.6, 0.7), rear_window_base=(0.15, 0.24),
                  roof_start=(0.31, 0.38), roof_end=(0.56, 0.63), windscreen_base=(0.72, 0.79),
                  wheelbase=(0.56, 0.62), wheel_radius=(0.30, 0.35), nose=(0.44, 0.56), tail=(0.54, 0.64)),
    "hatchback": dict(length=(3.6, 4.4), width=(1.62, 1.82), height=(1.42, 1.6), clearance=(0.12, 0.17),
                      belt=(0.56, 0.66), hood=(0.55, 0.64), trunk=(0.72, 0.84), rear_window_base=(0.04, 0.09),
                      roof_start=(0.14, 0.26), roof_end=(0.56, 0.64), windscreen_base=(0.72, 0.8),
                      wheelbase=(0.6, 0.66), wheel_radius=(0.29, 0.33), nose=(0.44, 0.56), tail=(0.6, 0.72)),
    "wagon": dict(length=(4.5, 5.1), width=(1.75, 1.92), height=(1.44, 1.56), clearance=(0.12, 0.17),
                  belt=(0.58, 0.66), hood=(0.57, 0.65), trunk=(0.74, 0.84), rear_window_base=(0.04, 0.08),
                  roof_start=(0.08, 0.15), roof_end=(0.58, 0.64), windscreen_base=(0.72, 0.79),
                  wheelbase=(0.56, 0.61), wheel_radius=(0.31, 0.35), nose=(0.44, 0.56), tail=(0.62, 0.74)),
    "coupe": dict(length=(4.1, 4.8), width=(1.78, 1.98), height=(1.18, 1.36), clearance=(0.09, 0.14),
                  belt=(0.6, 0.7), hood=(0.58, 0.68), trunk=(0.64, 0.74), rear_window_base=(0.12, 0.24),
                  roof_start=(0.36, 0.45), roof_end=(0.52, 0.6), windscreen_base=(0.7, 0.8),
                  wheelbase=(0.56, 0.62), wheel_radius=(0.31, 0.36), nose=(0.4, 0.52), tail=(0.56, 0.68)),
    "suv": dict(length=(3.9, 5.0), width=(1.75, 2.02), height=(1.64, 1.98), clearance=(0.19, 0.28),
                belt=(0.54, 0.63), hood=(0.57, 0.67), trunk=(0.8, 0.9), rear_window_base=(0.04, 0.08),
                roof_start=(0.07, 0.14), roof_end=(0.6, 0.7), windscreen_base=(0.73, 0.81),
                wheelbase=(0.56, 0.64), wheel_radius=(0.35, 0.43), nose=(0.5, 0.66), tail=(0.7, 0.84),
                boxiness=(5.0, 8.0)),
    "pickup": dict(length=(5.0, 5.9), width=(1.84, 2.05), height=(1.72, 1.98), clearance=(0.21, 0.29),
                   belt=(0.54, 0.6), hood=(0.6, 0.68), trunk=(0.55, 0.63), rear_window_base=(0.38, 0.45),
                   roof_start=(0.41, 0.48), roof_end=(0.62, 0.68), windscreen_base=(0.74, 0.8),
                   wheelbase=(0.58, 0.64), wheel_radius=(0.37, 0.43), nose=(0.52, 0.66), tail=(0.5, 0.6),
                   boxiness=(5.0, 8.0)),
    "van": dict(length=(4.6, 6.2), width=(1.8, 2.05), height=(1.82, 2.6), clearance=(0.14, 0.2),
                belt=(0.48, 0.58), hood=(0.44, 0.56), trunk=(0.88, 0.96), rear_window_base=(0.04, 0.07),
                roof_start=(0.06, 0.1), roof_end=(0.7, 0.8), windscreen_base=(0.79, 0.87),
                wheelbase=(0.56, 0.64), wheel_radius=(0.31, 0.36), nose=(0.4, 0.52), tail=(0.84, 0.94),
                boxiness=(6.0, 9.0)),
    "box_truck": dict(length=(6.0, 9.0), width=(2.2, 2.55), height=(2.9, 3.8), clearance=(0.28, 0.4),
                      belt=(0.3, 0.42), hood=(0.36, 0.5), trunk=(0.94, 0.99), rear_window_base=(0.04, 0.06),
                      roof_start=(0.05, 0.08), roof_end=(0.7, 0.78), windscreen_base=(0.82, 0.9),
                      wheelbase=(0.52, 0.62), wheel_radius=(0.45, 0.54), nose=(0.32, 0.45), tail=(0.92, 0.98),
                      boxiness=(8.0, 12.0), taper=(0.02, 0.06)),
    "flatbed": dict(length=(6.0, 9.0), width=(2.2, 2.55), height=(2.6, 3.3), clearance=(0.28, 0.4),
                    belt=(0.28, 0.36), hood=(0.4, 0.52), trunk=(0.3, 0.4), rear_window_base=(0.58, 0.68),
                    roof_start=(0.66, 0.73), roof_end=(0.8, 0.86), windscreen_base=(0.88, 0.93),
                    wheelbase=(0.52, 0.62), wheel_radius=(0.45, 0.54), nose=(0.36, 0.5), tail=(0.26, 0.36),
                    boxiness=(8.0, 12.0), taper=(0.02, 0.06)),
    "bus": dict(length=(9.0, 13.0), width=(2.4, 2.55), height=(2.9, 3.4), clearance=(0.25, 0.35),
                belt=(0.3, 0.4), hood=(0.82, 0.92), trunk=(0.88, 0.96), rear_window_base=(0.04, 0.06),
                roof_start=(0.06, 0.09), roof_end=(0.88, 0.92), windscreen_base=(0.935, 0.955),
                wheelbase=(0.5, 0.6), wheel_radius=(0.48, 0.55), nose=(0.84, 0.94), tail=(0.84, 0.94),
                boxiness=(8.0, 12.0), taper=(0.01, 0.04)),
    "tractor": dict(length=(3.2, 4.4), width=(1.6, 2.0), height=(2.4, 2.95), clearance=(0.38, 0.5),
                    belt=(0.42, 0.52), hood=(0.42, 0.52), trunk=(0.42, 0.56), rear_window_base=(0.08, 0.14),
                    roof_start=(0.12, 0.18), roof_end=(0.36, 0.44), windscreen_base=(0.46, 0.56),
                    wheelbase=(0.58, 0.68), wheel_radius=(0.4, 0.5), rear_wheel_scale=(1.5, 1.9),
                    wheel_width=(0.3, 0.45), wheel_outset=(0.15, 0.3), nose=(0.36, 0.48), tail=(0.38, 0.55),
                    boxiness=(4.0, 7.0)),
    "racer": dict(length=(4.4, 5.6), width=(0.9, 1.2), height=(0.88, 1.05), clearance=(0.04, 0.08),
                  belt=(0.5, 0.6), hood=(0.34, 0.44), trunk=(0.74, 0.86), rear_window_base=(0.25, 0.33),
                  roof_start=(0.38, 0.44), roof_end=(0.48, 0.54), windscreen_base=(0.58, 0.68),
                  tumblehome=(0.35, 0.6), wheelbase=(0.62, 0.68), wheel_radius=(0.32, 0.36),
                  wheel_width=(0.3, 0.4), wheel_outset=(0.3, 0.42), nose=(0.18, 0.3), tail=(0.7, 0.9),
                  boxiness=(3.0, 5.0)),
    "two_wheeler": dict(length=(1.9, 2.35), width=(0.42, 0.8), height=(1.02, 1.38), clearance=(0.26, 0.36),
                        belt=(0.45, 0.55), hood=(0.5, 0.6), trunk=(0.56, 0.68), rear_window_base=(0.26, 0.34),
                        roof_start=(0.56, 0.64), roof_end=(0.72, 0.78), windscreen_base=(0.82, 0.88),
                        tumblehome=(1.1, 1.3), wheelbase=(0.62, 0.7), front_axle_offset=(-0.03, 0.03),
                        wheel_radius=(0.29, 0.35), wheel_width=(0.07, 0.14), nose=(0.44, 0.56),
                        tail=(0.5, 0.64), boxiness=(3.0, 5.0)),
}
"""Parameter ranges (uniform, low..high) per body type. ``wheelbase`` and ``front_axle_offset``
are fractions of the length here (metres in :class:`CarParams`); a two-wheeler's tyres sit side
by side on the centre line (its track equals the tyre width, see :func:`_two_wheeler_track`)."""

COMMON: dict[str, Range] = dict(tumblehome=(0.74, 0.88), front_axle_offset=(-0.01, 0.03), wheel_width=(0.19, 0.3),
                                wheel_outset=(-0.01, 0.04), boxiness=(4.0, 6.0), taper=(0.08, 0.18),
                                rear_wheel_scale=(1.0, 1.0))
"""Ranges shared by every body type unless its own table overrides them."""

PARAM_NAMES = ("length", "width", "height", "clearance", "belt", "hood", "trunk", "rear_window_base", "roof_start",
               "roof_end", "windscreen_base", "tumblehome", "wheelbase", "front_axle_offset", "wheel_radius",
               "wheel_width", "wheel_outset", "nose", "tail", "boxiness", "taper", "rear_wheel_scale")
"""The generator parameters a vehicle is described by (the predictor's regression targets), in
the body-type tables' units (wheelbase and axle offset as fractions of the length)."""

DEFORM_MODES = 3
DEFORM_AMPLITUDE = 0.035
"""Smooth random deformation: this many sine modes along the length for the width and for the
height of the body, each with a uniform amplitude up to this fraction."""


@dataclass
class Vehicle:
    """One procedural vehicle: its body type, parameters (table units) and deformation coefficients."""

    body_type: str
    params: dict[str, float]
    deform: np.ndarray

    def car_params(self, base: CarParams | None = None) -> CarParams:
        """The :class:`CarParams` of this vehicle (metres), on ``base``'s mesh resolution."""
        return car_params(self.params, base)

    def as_dict(self) -> dict:
        """JSON-serialisable record (provenance, labels)."""
        return {"body_type": self.body_type, "params": {k: round(float(v), 5) for k, v in self.params.items()},
                "deform": [round(float(v), 5) for v in self.deform.ravel()]}


def car_params(params: dict[str, float], base: CarParams | None = None) -> CarParams:
    """Generator parameters (table units) -> :class:`CarParams` (metres), clamped to a valid profile.

    The profile stations are forced increasing inside (0.03, 0.96) and the roof above
    the belt, so any regression output gives a valid, closed mesh.
    """
    base = base or CarParams()
    p = {k: float(v) for k, v in params.items() if k in PARAM_NAMES}
    length = max(p.get("length", base.length), 0.5)
    p["length"] = length
    p["width"] = max(p.get("width", base.width), 0.2)
    p["height"] = max(p.get("height", base.height), 0.4)
    p["clearance"] = float(np.clip(p.get("clearance", base.clearance), 0.02, 0.45 * p["height"]))
    if "wheelbase" in p:
        p["wheelbase"] = float(np.clip(p["wheelbase"], 0.3, 0.8)) * length
    if "front_axle_offset" in p:
        p["front_axle_offset"] = float(np.clip(p["front_axle_offset"], -0.1, 0.1)) * length
    stations = [p.get(k, getattr(base, k)) for k in ("rear_window_base", "roof_start", "roof_end", "windscreen_base")]
    lo = 0.035
    for i, name in enumerate(("rear_window_base", "roof_start", "roof_end", "windscreen_base")):
        hi = 0.955 - 0.01 * (3 - i)
        stations[i] = float(np.clip(stations[i], lo, hi))
        lo = stations[i] + 0.01
        p[name] = stations[i]
    for name in ("belt", "hood", "trunk", "nose", "tail"):
        if name in p:
            p[name] = float(np.clip(p[name], 0.15, 0.97))
    p["wheel_radius"] = float(np.clip(p.get("wheel_radius", base.wheel_radius), 0.1, 0.4 * p["height"]))
    p["wheel_width"] = max(p.get("wheel_width", base.wheel_width), 0.04)
    p["boxiness"] = float(np.clip(p.get("boxiness", base.boxiness), 2.0, 14.0))
    p["taper"] = float(np.clip(p.get("taper", base.taper), 0.0, 0.4))
    p["tumblehome"] = float(np.clip(p.get("tumblehome", base.tumblehome), 0.3, 1.4))
    p["rear_wheel_scale"] = float(np.clip(p.get("rear_wheel_scale", base.rear_wheel_scale), 0.8, 2.2))
    return replace(base, **p)


def _two_wheeler_track(p: CarParams) -> CarParams:
    """A two-wheeler's left and right tyres meet on the centre line (track = tyre width)."""
    half = 0.5 * p.width  # the body's half width at the axles (the plan is full width there)
    return replace(p, wheel_outset=p.wheel_width - half)


def sample_vehicle(rng: np.random.Generator, body_type: str | None = None,
                   shares: dict[str, float] | None = None) -> Vehicle:
    """Draw one vehicle: its body type (by ``shares``, default equal), parameters and deformation."""
    if body_type is None:
        names = list(BODY_TYPES)
        weights = np.array([float((shares or {}).get(n, 1.0 if shares is None else 0.0)) for n in names])
        if weights.sum() <= 0:
            raise ValueError("body-type shares must have a positive entry")
        body_type = names[int(rng.choice(len(names), p=weights / weights.sum()))]
    if body_type not in BODY_TYPES:
        raise ValueError(f"unknown body type {body_type!r}; known: {', '.join(BODY_TYPES)}")
    ranges = {**COMMON, **BODY_TYPES[body_type]}
    params = {name: float(rng.uniform(*ranges[name])) for name in PARAM_NAMES}
    deform = rng.uniform(-DEFORM_AMPLITUDE, DEFORM_AMPLITUDE, size=(2, DEFORM_MODES))
    return Vehicle(body_type, params, deform)


def body_vertex_count(p: CarParams) -> int:
    """Number of body (non-tyre) vertices at the start of the car mesh: the loft's grid plus two cap centres."""
    return p.stations * p.ring + 2


def vehicle_points(vehicle: Vehicle, template: Template | None = None) -> np.ndarray:
    """(V, 3) float64 points of ``vehicle`` with the car template's topology (canonical frame, metres).

    The deformation scales the body's width and height by smooth, mirror-symmetric
    sine fields along the length (the tyres are untouched, so they stay round and on
    the ground). Raises ``ValueError`` if ``template`` is given and the mesh does not
    have its topology.
    """
    p = vehicle.car_params(template_car_params(template) if template is not None else CarParams())
    if vehicle.body_type == "two_wheeler":
        p = _two_wheeler_track(p)
    points, faces = car_points(p)
    if template is not None:
        check_topology(faces, template, "the procedural vehicle")
    nb = body_vertex_count(p)
    body = points[:nb]
    u = np.clip(body[:, 2] / p.length + 0.5, 0.0, 1.0)
    k = np.arange(1, vehicle.deform.shape[1] + 1)
    waves = np.sin(np.pi * u[:, None] * k[None, :])  # zero at both ends: the bumpers keep their place
    sx = 1.0 + waves @ vehicle.deform[0]
    sy = 1.0 + waves @ vehicle.deform[1]
    floor = p.clearance
    body[:, 0] *= sx
    body[:, 1] = floor + (body[:, 1] - floor) * np.where(body[:, 1] > floor, sy, 1.0)
    return points


def vehicle_from_car_params(body_type: str, p: CarParams) -> Vehicle:
    """The :class:`Vehicle` (no deformation) whose parameters are ``p`` (metres -> table units)."""
    d = asdict(p)
    params = {name: float(d[name]) for name in PARAM_NAMES}
    params["wheelbase"] = p.wheelbase / p.length
    params["front_axle_offset"] = p.front_axle_offset / p.length
    return Vehicle(body_type, params, np.zeros((2, DEFORM_MODES)))


def vehicle_shape_basis(vehicle: Vehicle, template: Template | None = None) -> np.ndarray:
    """(K, V, 3) displacement (metres) of ``vehicle`` per unit of each :data:`lift3d.templates.car.SHAPE_MODES`
    parameter: the fit's low-dimensional shape space around a predicted vehicle.

    As :func:`lift3d.templates.car.car_shape_basis`, by central differences, but through
    :func:`car_params`, so a perturbed profile stays valid near its limits; the wheelbase and
    axle-offset units (metres) are converted to this table's fractions of the length.
    """
    from .car import SHAPE_MODES

    length = max(vehicle.params.get("length", CarParams().length), 0.5)
    basis = []
    for name, unit in SHAPE_MODES.items():
        step = unit / length if name in ("wheelbase", "front_axle_offset") else unit
        h = 0.25 * step
        value = vehicle.params[name]
        hi = vehicle_points(replace(vehicle, params={**vehicle.params, name: value + h}), template)
        lo = vehicle_points(replace(vehicle, params={**vehicle.params, name: value - h}), template)
        basis.append((hi - lo) * (step / (2.0 * h)))
    return np.stack(basis)
