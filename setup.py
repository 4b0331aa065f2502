"""The compiled parts of irisops: the forest evaluator (src/irisops/_forest.c), the batch
rows' JSON reader and writer (src/irisops/serving/_rows.c), and the request tallies
(src/irisops/serving/_tally.c).

Everything else about the package is in pyproject.toml. A C compiler and Python's
headers are needed to build a wheel or an editable install; no extension needs a
library beyond Python itself (no numpy C API: arrays arrive through the buffer protocol).
"""

from setuptools import Extension, setup

# No -march=native: the wheel built in the image runs on any x86-64 (or arm64).
FLAGS = ["-O3", "-std=c11", "-Wall", "-Wextra", "-Werror=vla"]

setup(
    ext_modules=[
        Extension("irisops._forest", sources=["src/irisops/_forest.c"], extra_compile_args=FLAGS),
        Extension(
            "irisops.serving._rows",
            sources=["src/irisops/serving/_rows.c"],
            extra_compile_args=FLAGS,
        ),
        Extension(
            "irisops.serving._tally",
            sources=["src/irisops/serving/_tally.c"],
            extra_compile_args=FLAGS,
        ),
    ]
)
