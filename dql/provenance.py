"""What every result file says about how it was made."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Any

PACKAGES = ("torch", "numpy", "gymnasium", "mujoco", "h5py", "minari", "ray", "optuna")


def package_versions() -> dict[str, str]:
    """Versions of the packages that can change a result (absent ones are left out)."""
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def provenance(**fields: Any) -> dict[str, Any]:
    try:
        own = metadata.version("diffusion-ql-sweeps")
    except metadata.PackageNotFoundError:
        own = "not installed"
    return {"dql_version": own, "versions": package_versions(), **fields}
