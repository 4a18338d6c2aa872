"""The reconstructor: camera search, shape fit, wheels, texture bake and the run that ties them together.

Entry point: :func:`lift3d.pipeline.run.run_reconstruction` (what :func:`lift3d.api.reconstruct` calls).
"""
