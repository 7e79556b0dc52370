"""Builds the one C extension: the CPU kernels of the perturbations (transforms/csrc).

Everything else about the package is in pyproject.toml. The extension is optional: without a
C compiler the install still succeeds, and the perturbations use torch/numpy code instead
(semantic_genesis.transforms.native).
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

CSRC = "src/semantic_genesis/transforms/csrc"


class BuildExt(build_ext):
    """Optimise with GCC/Clang's flags (MSVC gets its own defaults)."""

    def build_extensions(self) -> None:
        if self.compiler.compiler_type == "unix":
            for ext in self.extensions:
                ext.extra_compile_args = ["-O3", "-fno-math-errno"]
        super().build_extensions()


setup(
    ext_modules=[
        Extension(
            "semantic_genesis.transforms._native",
            [f"{CSRC}/{name}.c" for name in ("module", "warp", "pointwise")],
            include_dirs=[CSRC],
            depends=[f"{CSRC}/simd.h"],
            optional=True,
        )
    ],
    cmdclass={"build_ext": BuildExt},
)
