"""Helpers shared by the tests: plain functions and classes, no fixtures
(those are in tests/conftest.py), and nothing a test module defines: no test
module imports another test module or the conftest.

* ``factories``: events to send.
* ``ports``: free loopback ports.
* ``services``: the in-process services, their clients, tenants with keys.
* ``gateway``: a real Envoy in front of test services.
* ``gateway_calls``: calls the gateway tests share (Meraki's path, its
  events and GETs, ingest through gRPC, the Zequenze samples).
* ``sync_calls``: calls on the vendor-sync service.
* ``fake_vendors``: fake Meraki and Mojo servers.
* ``faults``: ``connlog up`` in its own process, polled with deadlines.
* ``db_proxy``: a TCP proxy in front of PostgreSQL that can cut connections.
* ``servicer_context``: a fake ``grpc.aio.ServicerContext`` for unit tests.

The database a test session uses is set up by connlog.core.database
(``DatabaseServer``), as the suite and the benchmarks set up theirs.
"""
