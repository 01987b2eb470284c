"""The optional C extension; everything else about the package is in pyproject.toml.

`optional=True`: where it cannot be compiled (no C compiler or Python headers), the install goes
on without it and qw_metrics takes its pure-Python path.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("qw_metrics._speedups", ["src/qw_metrics/_speedups.c"], optional=True),
    ]
)
