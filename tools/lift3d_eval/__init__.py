"""lift3d's evaluation code, kept out of the runtime package: the product never grades itself.

* :mod:`lift3d_eval.metrics`: mask, surface, volume, part and colour metrics with
  their own small software rasteriser (numpy / scipy / OpenCV only).

``tools/evaluate.py`` imports it from beside itself; the tests find it through
pytest's ``pythonpath`` setting.
"""
