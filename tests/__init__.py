"""connlog's tests. Importing connlog here, before any test module imports
grpc, turns gRPC's fork handlers off in the test process (see connlog's
package docstring)."""

import connlog  # noqa: F401
