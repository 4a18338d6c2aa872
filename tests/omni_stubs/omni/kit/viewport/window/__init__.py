"""Stand-in for ``omni.kit.viewport.window`` (tests only)."""
