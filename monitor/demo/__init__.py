"""The demo fleet `make run` serves: ten projects whose every family shows real behaviour at once.

Nothing here is reached in production: `mlmon demo` writes the fleet's files into its own data
directory (a FOCUS export from `focus_export`, lock files, the configuration), writes quality
history through the same validation as `POST /api/v1/samples`, and serves an OpenCost-compatible
allocation feed from the same process, so the demo needs no service and no network.
"""
