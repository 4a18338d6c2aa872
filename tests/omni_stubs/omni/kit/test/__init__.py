"""Stand-in for ``omni.kit.test`` (tests only): ``AsyncTestCase`` on top of the standard library.

Kit's ``omni.kit.test.AsyncTestCase`` (public Isaac Sim 5 / Kit 107 typings,
``omni/kit/test/async_unittest.pyi``) is a ``unittest.TestCase`` whose ``async def test_*``
methods Kit's runner awaits on its own event loop; here the standard library's
``IsolatedAsyncioTestCase`` awaits them, so the same test modules run under pytest.
"""

from __future__ import annotations

import unittest

TEST_HELPERS = ()


class AsyncTestCase(unittest.IsolatedAsyncioTestCase):
    pass
