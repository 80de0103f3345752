"""connlog benchmarks: ``python -m bench [--quick]`` (see docs/benchmarks.md).

Every figure is a ratio against a baseline measured in the same run, because
machines are noisy. Benchmarks are run by hand, never by the test suite.

Importing connlog first turns gRPC's fork handlers off in the benchmark
processes (see connlog's package docstring).
"""

import connlog  # noqa: F401
