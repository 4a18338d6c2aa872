"""Stand-in for the ``omni.kit`` namespace (tests only)."""
