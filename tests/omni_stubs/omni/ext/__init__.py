"""Stand-in for ``omni.ext`` (tests only)."""


class IExt:
    """Base class of Python extensions; Kit calls on_startup(ext_id) and on_shutdown()."""

    def on_startup(self, ext_id: str) -> None:
        pass

    def on_shutdown(self) -> None:
        pass


def get_extension_name(ext_id: str) -> str:
    """``"lift3d.reconstruct-0.1.0"`` -> ``"lift3d.reconstruct"``."""
    return ext_id.split("-")[0]
