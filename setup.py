"""Only the compiled part of the build: everything else is in pyproject.toml.

``mlhelpers.tools._forest_walk`` is the compact forest's tree walk in C (why hand-written: its source's first
comment). ``optional=True``: where no C compiler is found the install still succeeds and ``mlh optimize``'s compact
models walk in numpy/numba instead (same leaves, slower batches; ``mlhelpers.tools.forest_walk.c_walk``).
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("mlhelpers.tools._forest_walk", sources=["mlhelpers/tools/_forest_walk.c"],
                             extra_compile_args=["-O3"], optional=True)])
