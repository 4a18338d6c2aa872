"""Synthetic training data: procedural vehicles rendered by the project's own Warp kernels."""
