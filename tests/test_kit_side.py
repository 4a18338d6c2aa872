"""The Kit-side tests (lift3d/kit/tests, omni.kit.test.AsyncTestCase) run here against the stand-ins.

Kit's test runner enables the extension and then runs the test cases of
``lift3d.kit.tests``; this does the same with the stand-in modules, with a quick fake
in place of the reconstructor so a queued job does not start a real fit.
"""

from __future__ import annotations

import importlib
import io
import unittest

from test_kit_extension import FakeReconstruct

from omni_stubs.harness import kit  # noqa: F401  (the fixture)

EXPECTED = {
    "test_shutdown_releases_and_startup_registers_again",
    "test_show_window_action_opens_the_panel",
    "test_command_adds_a_reference_and_undo_removes_it",
    "test_viewport_drop_of_two_photos_and_cameras_is_one_job",
    "test_result_thumbnail_shows_raw_pixels",
}


def test_kit_side_tests_pass_against_the_stand_ins(kit, monkeypatch, tmp_path):
    monkeypatch.setattr("lift3d.api.reconstruct", FakeReconstruct(steps=1000))
    kit.set("output_folder", str(tmp_path / "out"))  # what an unsaved stage would use
    kit.start()
    kit.app.get_app().get_extension_manager()._register("lift3d.reconstruct", enable=kit.start, disable=kit.stop,
                                                        enabled=True)
    suite = unittest.TestLoader().loadTestsFromModule(importlib.import_module("lift3d.kit.tests"))
    names = {test.id().rsplit(".", 1)[-1] for group in suite for test in group}
    assert EXPECTED <= names, f"missing Kit-side tests: {EXPECTED - names}"
    out = io.StringIO()
    result = unittest.TextTestRunner(stream=out, verbosity=2).run(suite)
    assert result.wasSuccessful(), out.getvalue()
    assert result.testsRun == len(names)
