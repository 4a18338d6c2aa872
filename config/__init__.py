"""Default settings, presets, categories and templates of lift3d (data only).

Installed as ``lift3d.config``; see :mod:`lift3d.settings` for the loader.
"""
