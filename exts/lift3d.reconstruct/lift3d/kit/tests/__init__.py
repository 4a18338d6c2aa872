"""Kit-side tests of ``lift3d.reconstruct``, run by Kit's test runner (``[[test]]`` in extension.toml).

Kit imports ``lift3d.kit.tests`` and runs every ``omni.kit.test.AsyncTestCase`` found in it.
The same modules also run outside Kit against the stand-ins (``tests/test_kit_side.py``).
"""

from .test_extension import *  # noqa: F401,F403
