"""The one compiled part of irisops: the forest evaluator (src/irisops/_forest.c).

Everything else about the package is in pyproject.toml. A C compiler and Python's
headers are needed to build a wheel or an editable install; the evaluator needs no
library beyond Python itself (no numpy C API: arrays arrive through the buffer protocol).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "irisops._forest",
            sources=["src/irisops/_forest.c"],
            # No -march=native: the wheel built in the image runs on any x86-64 (or arm64).
            extra_compile_args=["-O3", "-std=c11", "-Wall", "-Wextra", "-Werror=vla"],
        )
    ]
)
