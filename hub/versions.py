"""Package versions recorded with every variant and result row."""

from __future__ import annotations

import platform
from functools import lru_cache
from importlib import metadata

PACKAGES = ("evalhub", "torch", "transformers", "peft", "accelerate", "datasets", "evaluate",
            "scikit-learn", "gradio", "onnxruntime", "openvino", "nncf", "captum", "nltk")


@lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions
