"""Stand-in for the ``omni`` namespace of Omniverse Kit (tests only)."""
