"""connlog: WiFi and network client connection events, stored once and served in
every caller's shape.

Importing connlog turns gRPC's fork handlers off for this process (unless the
environment already sets ``GRPC_ENABLE_FORK_SUPPORT``). connlog forks only to
exec (pg_ctl as the database's user, Envoy, worker processes by spawn), and
with the handlers on, a child forked while other threads are inside gRPC
restarts gRPC's pollers and can die before its exec (SIGSEGV or SIGBUS: seen
as ``pg_ctl restart`` dying in the test suite). gRPC reads the setting when it
is first imported, so every entry point (``python -m connlog``, the tests, the
benchmarks) imports connlog before grpc.
"""

import os

os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
