"""Package layout that pyproject.toml cannot express on its own.

The built-in plugins live in ./plugins (as ARCHITECTURE.md lays out) but install as the
`hub_plugins` package, so the wheel never claims a generic top-level name such as `plugins`.
"""

from setuptools import find_packages, setup

hub_packages = find_packages(include=["hub", "hub.*"])
plugin_packages = [
    "hub_plugins" + name[len("plugins") :] for name in find_packages(include=["plugins", "plugins.*"])
]

setup(
    packages=hub_packages + plugin_packages,
    package_dir={"hub_plugins": "plugins"},
)
