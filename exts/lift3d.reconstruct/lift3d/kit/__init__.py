"""lift3d's Omniverse Kit extension (``lift3d.reconstruct``): the only code that imports ``omni.*`` and ``carb``.

A thin adapter over the Kit-free core: a menu entry and a panel, drag and drop
onto the panel and the viewport, reconstructions run by :class:`lift3d.jobs.JobQueue`
off the UI thread, and each result added to the open stage with one undoable
command (:class:`~lift3d.kit.commands.Lift3dAddReconstructionCommand`).
"""

from .extension import Lift3dExtension

__all__ = ["Lift3dExtension"]
