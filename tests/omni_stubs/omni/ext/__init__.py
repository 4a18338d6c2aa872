"""Stand-in for ``omni.ext`` (tests only).

``IExt`` (``on_startup(ext_id)``, ``on_shutdown()``) and ``get_extension_name(ext_id)``
as in the public Isaac Sim 5 (Kit 107) typings of omni.ext.
"""

TEST_HELPERS = ()


class IExt:
    """Base class of Python extensions; Kit calls on_startup(ext_id) and on_shutdown()."""

    def on_startup(self, ext_id):
        pass

    def on_shutdown(self):
        pass


def get_extension_name(ext_id: str) -> str:
    """``"lift3d.reconstruct-0.1.0"`` -> ``"lift3d.reconstruct"``."""
    return ext_id.split("-")[0]
