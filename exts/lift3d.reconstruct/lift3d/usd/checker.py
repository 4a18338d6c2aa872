"""``usdchecker`` for lift3d assets: the USD compliance rules, as a list of messages.

OpenUSD's checker changed implementation over time. Releases up to 25.x ship
the Python ``UsdUtils.ComplianceChecker`` (what ``usdchecker`` ran); newer
ones replaced it with the validation framework (``UsdValidation``), whose
registered validators carry the same rules (stage metadata, encapsulation,
material binding API, shader types, GeomSubset families, missing references,
...). :func:`check_asset` runs whichever the installed ``usd-core`` has (both
where both exist) with the default, non-ARKit rule set, and adds the texture
rules every version applies to UsdUVTexture files (a supported image format,
and, as ``docs/DESIGN.md`` asks, a relative path that resolves).
"""

from __future__ import annotations

from pathlib import Path

from pxr import Sdf, Usd, UsdShade, UsdUtils

from .reader import open_asset_stage

TEXTURE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".exr")
"""Image formats every USD renderer reads (the checker's texture rule)."""


def _compliance_checker(layer_path: Path) -> list[str]:
    """Errors and failed checks of ``UsdUtils.ComplianceChecker`` (USD <= 25.x); [] where it is absent."""
    factory = getattr(UsdUtils, "ComplianceChecker", None)
    if factory is None:
        return []
    checker = factory(arkit=False, skipARKitRootLayerCheck=False, rootPackageOnly=False, skipVariants=False,
                      verbose=False)
    checker.CheckCompliance(str(layer_path))
    return [f"ComplianceChecker: {m}" for m in [*checker.GetErrors(), *checker.GetFailedChecks()]]


def _validation_framework(stage: Usd.Stage, warnings: bool) -> list[str]:
    """Errors (and warnings if asked) of every registered UsdValidation validator; [] before USD 24.11."""
    try:
        from pxr import UsdValidation
    except ImportError:
        return []
    validators = UsdValidation.ValidationRegistry().GetOrLoadAllValidators()
    keep = {UsdValidation.ValidationErrorType.Error}
    if warnings:
        keep.add(UsdValidation.ValidationErrorType.Warn)
    out = []
    for error in UsdValidation.ValidationContext(validators).Validate(stage):
        if error.GetType() not in keep:
            continue
        sites = sorted({str(s.GetPrim().GetPath()) for s in error.GetSites() if s.IsPrim()})
        where = f" [{', '.join(sites)}]" if sites else ""
        out.append(f"{error.GetValidator().GetMetadata().name}: {error.GetMessage()}{where}")
    return out


def _texture_rules(stage: Usd.Stage) -> list[str]:
    out = []
    for prim in stage.Traverse():
        shader = UsdShade.Shader(prim)
        if not shader or shader.GetIdAttr().Get() != "UsdUVTexture":
            continue
        inp = shader.GetInput("file")
        value = inp.Get() if inp else None
        if not isinstance(value, Sdf.AssetPath) or not value.path:
            out.append(f"TextureChecker: {prim.GetPath()} has no texture file")
            continue
        path = value.path
        if Path(path).suffix.lower() not in TEXTURE_EXTENSIONS:
            out.append(f"TextureChecker: {prim.GetPath()} uses {path!r}, not one of {', '.join(TEXTURE_EXTENSIONS)}")
        if Path(path).is_absolute() or ":" in path.split("/")[0]:
            out.append(f"TextureChecker: {prim.GetPath()} uses the absolute path {path!r}; use a relative one")
        if not value.resolvedPath:
            out.append(f"TextureChecker: {prim.GetPath()} texture {path!r} does not resolve")
    return out


def check_asset(path: Path | str, warnings: bool = False) -> list[str]:
    """Compliance problems of the asset at ``path`` (asset folder or layer); an empty list means it passes.

    Each entry is one line, ``"<rule>: <message> [<prim paths>]"``. With
    ``warnings=True`` the validators' warnings are included too.

    Raises:
        InputError: ``path`` is not a readable USD layer.
    """
    stage, layer_path = open_asset_stage(path)
    return [*_compliance_checker(layer_path), *_validation_framework(stage, warnings), *_texture_rules(stage)]
