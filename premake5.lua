-- Kit build description of lift3d (premake5, driven by `repo build` in a Kit repository;
-- `./repo.sh build` runs tools/link_build.py, which creates the same links without Kit's tools).

-- Shared build scripts from the repo_build package.
repo_build = require("omni/repo/build")

-- Repo root
root = repo_build.get_abs_path(".")

-- Execute the kit template premake configuration, which creates the solution, finds extensions, etc.
dofile("_repo/deps/repo_kit_tools/kit-template/premake5.lua")

-- Our extension lives in exts/ (not source/extensions/), so include its build description
-- explicitly. It links the repository's Warp kernels (kernels/) and default configuration
-- (config/) into the extension's Python package as lift3d/kernels and lift3d/config, which
-- makes the built extension folder self-contained.
include("exts/lift3d.reconstruct")
