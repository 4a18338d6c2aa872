-- Use folder name to build extension name and tag. Version is specified in config/extension.toml.
local ext = get_current_extension_info()

project_ext(ext)

-- Link the extension's folders into its target directory, and the repository-level kernels/
-- and config/ into its Python package (lift3d.kernels, lift3d.config), exactly where
-- pyproject.toml maps them for a pip install. tools/link_build.py reads these pairs.
repo_build.prebuild_link {
    { "config", ext.target_dir.."/config" },
    { "data", ext.target_dir.."/data" },
    { "docs", ext.target_dir.."/docs" },
    { "pip_archives", ext.target_dir.."/pip_archives" },
    { "lift3d", ext.target_dir.."/lift3d" },
    { "%{root}/kernels", ext.target_dir.."/lift3d/kernels" },
    { "%{root}/config", ext.target_dir.."/lift3d/config" },
}
