"""Secrets at rest of vendor sync: credentials sealed (AES-256-GCM, bound to
their source), no usable API key stored, vendor-sync ingesting with its own
service identity, key rotation (``connlog secrets rotate``), plaintext from
before sealing sealed, and ``connlog up``'s keys (a generated sealing key
file, a sync-service key per run, revoked at stop)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest
from pydantic import SecretStr

from connlog import cli
from connlog.api.v1 import connection_event_pb2 as pb
from connlog.api.v1 import query_service_pb2 as qpb
from connlog.api.v1 import vendor_sync_service_pb2 as spb
from connlog.api.v1 import vendor_sync_service_pb2_grpc as sgrpc
from connlog.core.auth import create_service_key
from connlog.core.database import DatabaseServer, create_pool
from connlog.core.principal import Role
from connlog.core.sealing import Sealer, key_id
from connlog.core.server import ServiceContext, start_service
from connlog.core.settings import Settings
from connlog.devtools.ports import free_ports
from connlog.store.accounts import AccountStore
from connlog.store.migrate import migrate
from connlog.store.sync import SyncStore
from connlog.vendorsync import credentials
from tests.support.factories import now
from tests.support.fake_vendors import FakeMeraki, meraki_records
from tests.support.sync_calls import create, run

K1, K2, K3 = (bytes([n]) * 32 for n in (0x11, 0x22, 0x33))
SEALING = 6  # the migration that seals credentials and drops the per-source keys


def b64(*keys: bytes) -> str:
    return ",".join(base64.b64encode(k).decode() for k in keys)


def meraki_source(fake: FakeMeraki, network: str, credential: str) -> spb.SyncSource:
    source = spb.SyncSource(vendor=pb.VENDOR_MERAKI, base_url=f"{fake.url}/api/v1", credential=credential,
                            network_id=network, clients=["k1"])
    source.poll_interval.FromSeconds(3600)
    return source


async def _rows_text(conn, table: str) -> list[str]:
    """Every row of ``table``, every column, as text (bytea as hex)."""
    return [r[0] for r in await conn.fetch(f"SELECT to_jsonb(x)::text FROM {table} x")]


async def test_a_source_stores_neither_its_credential_nor_a_usable_key(sync, clients, tenant, pool, settings):
    credential = f"meraki-{secrets.token_hex(16)}"
    fake = FakeMeraki(credential)
    await fake.start()
    try:
        fake.add("N_sealed", "k1", meraki_records(3, now() - dt.timedelta(minutes=5)))
        async with pool.acquire() as conn:
            started = await conn.fetchval("SELECT now()")
        created = await create(sync, tenant, meraki_source(fake, "N_sealed", credential))
        assert created.has_credential and not created.credential
        # it still syncs: the credential opens in memory, ingest takes the service identity
        status = await run(sync, tenant, created)
        assert status.clients[0].ingested_count == 3, status
    finally:
        await fake.stop()
    source_id = created.name.removeprefix("syncSources/")
    async with pool.acquire() as conn:
        text = [t for table in ("sync_sources", "sync_checkpoints", "sync_client_identities", "api_keys")
                for t in await _rows_text(conn, table)]
        row = await conn.fetchrow("SELECT * FROM sync_sources WHERE source_id = $1", source_id)
        new_keys = await conn.fetch("SELECT * FROM api_keys WHERE created_at >= $1", started)
    # no plaintext credential anywhere, in any encoding the columns could hold
    for needle in (credential, credential.encode().hex(), base64.b64encode(credential.encode()).decode()):
        assert not any(needle in t for t in text)
    for value in row.values():
        if isinstance(value, bytes | str):
            assert credential.encode() not in (value if isinstance(value, bytes) else value.encode())
    # sealed for this source with the session's (first) key
    assert row["credential_sealed"][1:9] == Sealer.from_settings(settings).sealing_key_id
    # no usable API key: no token stored, and no value of the source's row
    # (or of a key made meanwhile) authenticates
    assert not any("clk_" in t for t in text)
    values = [v for r in [row, *new_keys] for v in r.values() if v is not None]
    candidates = {str(v) for v in values} | {v.decode(errors="ignore") for v in values if isinstance(v, bytes)}
    candidates |= {v.hex() for v in values if isinstance(v, bytes)}
    for value in sorted(c.strip() for c in candidates if c.strip() and c.isprintable()):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await clients.query.ListConnectionEvents(qpb.ListConnectionEventsRequest(parent="networks/N_sealed"),
                                                     metadata=(("authorization", f"Bearer {value}"),))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, value


async def test_a_sealed_credential_moved_to_another_source_does_not_open(sync, tenant, make_tenant, pool):
    mine, theirs = FakeMeraki("mine-key"), FakeMeraki("their-key")
    await mine.start()
    await theirs.start()
    try:
        other = await make_tenant()
        a = await create(sync, tenant, meraki_source(mine, "N_bound_a", "mine-key"))
        b = await create(sync, other, meraki_source(theirs, "N_bound_b", "their-key"))
        async with pool.acquire() as conn:  # an attacker with write access to the table
            await conn.execute(
                """UPDATE sync_sources SET credential_sealed = (SELECT credential_sealed FROM sync_sources
                                                               WHERE source_id = $1) WHERE source_id = $2""",
                a.name.removeprefix("syncSources/"), b.name.removeprefix("syncSources/"))
        status = await run(sync, other, b)
        assert "cannot be opened" in status.clients[0].last_error, status
        assert "mine-key" not in str(status)
        assert not mine.request_times and not theirs.request_times  # nothing sent anywhere
    finally:
        await mine.stop()
        await theirs.stop()


async def _register_servicer_only(server: grpc.aio.Server, ctx: ServiceContext) -> list[str]:
    """The VendorSyncService of vendor-sync's own startup checks, without its
    worker (it would poll the other tests' sources)."""
    from connlog.vendorsync.servicer import VendorSyncServicer, check_startable
    from connlog.vendorsync.worker import SyncWorker

    sealer = check_startable(ctx.settings)
    worker = SyncWorker(ctx.settings, SyncStore(ctx.pool), ctx.metrics, sealer)
    sgrpc.add_VendorSyncServiceServicer_to_server(VendorSyncServicer(ctx, worker, sealer), server)
    return [spb.DESCRIPTOR.services_by_name["VendorSyncService"].full_name]


async def test_without_a_sealing_key_no_credential_is_stored(suite, pool, tenant):
    settings = suite.settings.model_copy(update={"secret_keys": None, "sync_service_key": SecretStr("clk_x_y")})
    service = await start_service("vendor-sync", settings, _register_servicer_only, port=0, pool=pool)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
            source = spb.SyncSource(vendor=pb.VENDOR_MERAKI, base_url="https://api.meraki.com/api/v1",
                                    credential="never-stored", network_id="N_nokey", clients=["k1"])
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await create(sgrpc.VendorSyncServiceStub(channel), tenant, source)
    finally:
        await service.stop(1)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no sealing key configured" in err.value.details()
    async with pool.acquire() as conn:
        assert not await conn.fetchval(
            """SELECT count(*) FROM sync_sources s JOIN tenants t USING (tenant_ref) WHERE t.tenant_id = $1""",
            tenant.tenant_id)


def _serve_vendor_sync(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONNLOG_") and k != "DATABASE_URL"}
    ports = free_ports(2)
    clean |= {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "CONNLOG_VENDOR_SYNC_PORT": str(ports[0]),
              "CONNLOG_VENDOR_SYNC_METRICS_PORT": str(ports[1]), "CONNLOG_LOG_FORMAT": "console", **env}
    return subprocess.run([sys.executable, "-m", "connlog", "serve", "vendor-sync"], env=clean,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("env", "says", "secret"), [
    ({"CONNLOG_SECRET_KEYS": b64(K1)}, "CONNLOG_SYNC_SERVICE_KEY", None),
    ({"CONNLOG_SECRET_KEYS": b64(K1), "CONNLOG_SYNC_SERVICE_KEY": " "}, "CONNLOG_SYNC_SERVICE_KEY", None),
    ({"CONNLOG_SECRET_KEYS": "c2VjcmV0LWJ1dC1zaG9ydA==", "CONNLOG_SYNC_SERVICE_KEY": "clk_a_b"},
     "CONNLOG_SECRET_KEYS: key 1 is 16 bytes", "c2VjcmV0LWJ1dC1zaG9ydA"),
], ids=["no service key", "blank service key", "malformed sealing key"])
def test_vendor_sync_refuses_to_start_misconfigured(env, says, secret):
    done = _serve_vendor_sync(**env)
    assert done.returncode == 1, done
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    if secret:
        assert secret not in done.stderr + done.stdout


@pytest.fixture
async def own_database(pg_server: DatabaseServer) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    """A database of its own (rotation re-seals every source of a database)."""
    url = await pg_server.create_database("connlog_secrets", migrated=True)
    pool = await create_pool(Settings(database_url=url), url, min_size=1, max_size=2)
    yield url, pool
    await pool.close()


async def _add_source(pool: asyncpg.Pool, tenant_ref: int, sealer: Sealer | None, credential: str) -> str:
    source_id = secrets.token_hex(8)
    values = {"source_id": source_id, "tenant_ref": tenant_ref, "vendor": pb.VENDOR_MERAKI,
              "base_url": "https://api.meraki.com/api/v1", "network_id": "N_rot", "clients": ["k1"], "enabled": False}
    if sealer is not None:
        values["credential_sealed"] = credentials.seal(sealer, source_id, credential)
    await SyncStore(pool).create(values)
    if sealer is None:  # as stored before sealing
        async with pool.acquire() as conn:
            await conn.execute("UPDATE sync_sources SET credential_plaintext = $2 WHERE source_id = $1",
                               source_id, credential)
    return source_id


async def _rotate(url: str, keys: str, capsys) -> tuple[int, str, str]:
    args = cli._parser().parse_args(["secrets", "rotate"])
    code = await cli._dispatch(args, Settings(database_url=url, secret_keys=SecretStr(keys), log_format="console"))
    out = capsys.readouterr()
    return code, out.out, out.err


async def _opened(pool: asyncpg.Pool, keys: list[bytes]) -> dict[str, str | None]:
    """Each source's credential as ``keys`` open it (None: does not open)."""
    result: dict[str, str | None] = {}
    for record in await SyncStore(pool).list(None):
        try:
            result[record.source_id] = credentials.opened(Sealer(keys), record).credential
        except credentials.CredentialUnavailable:
            result[record.source_id] = None
    return result


async def test_rotation_reseals_every_credential_with_the_new_key(own_database, capsys):
    url, pool = own_database
    tenant_ref = await AccountStore(pool).ensure_tenant("t-rotation")
    expected = {await _add_source(pool, tenant_ref, Sealer([K1]), f"cred-{i}"): f"cred-{i}" for i in range(3)}
    expected[await _add_source(pool, tenant_ref, None, "legacy-cred")] = "legacy-cred"

    code, out, err = await _rotate(url, b64(K2, K1), capsys)
    assert code == 0, err
    assert f"key id {key_id(K2).hex()}" in out
    assert "re-sealed 3, sealed from plaintext 1, already current 0" in out
    code, out, _ = await _rotate(url, b64(K2, K1), capsys)  # idempotent
    assert code == 0 and "re-sealed 0, sealed from plaintext 0, already current 4" in out

    assert await _opened(pool, [K2]) == expected  # the new key alone opens everything
    assert await _opened(pool, [K1]) == dict.fromkeys(expected)  # the old one nothing
    async with pool.acquire() as conn:
        assert not await conn.fetchval("SELECT count(*) FROM sync_sources WHERE credential_plaintext <> ''")


async def test_rotation_refuses_a_credential_no_key_opens_and_changes_nothing(own_database, capsys):
    url, pool = own_database
    tenant_ref = await AccountStore(pool).ensure_tenant("t-rotation-refused")
    await _add_source(pool, tenant_ref, Sealer([K1]), "old-cred")
    await _add_source(pool, tenant_ref, None, "legacy-cred")
    stray = await _add_source(pool, tenant_ref, Sealer([K3]), "stray-cred")
    async with pool.acquire() as conn:
        before = await conn.fetch("SELECT * FROM sync_sources ORDER BY source_id")
    code, out, err = await _rotate(url, b64(K2, K1), capsys)
    assert code == 1
    assert f"syncSources/{stray}" in err and key_id(K3).hex() in err and "nothing changed" in err
    assert "stray-cred" not in out + err and b64(K3) not in out + err
    async with pool.acquire() as conn:
        assert await conn.fetch("SELECT * FROM sync_sources ORDER BY source_id") == before
    code, _, err = await _rotate(url, b64(K2, K1, K3), capsys)  # with the key it was sealed with
    assert code == 0, err
    assert set((await _opened(pool, [K2])).values()) == {"old-cred", "legacy-cred", "stray-cred"}


async def test_a_database_from_before_sealing_is_sealed_when_vendor_sync_starts(pg_server: DatabaseServer):
    url = await pg_server.create_database("connlog_legacy")
    conn = await asyncpg.connect(url)
    try:
        # the schema as it was before sealing, with a source stored the old way
        await migrate(conn, up_to=SEALING - 1)
        tenant_ref = await conn.fetchval("INSERT INTO tenants (tenant_id) VALUES ('t-legacy') RETURNING tenant_ref")
        await conn.execute("""INSERT INTO api_keys (key_id, tenant_ref, role, secret_hash)
                              VALUES ('ingestkey', $1, 'operator', '\\x00')""", tenant_ref)
        await conn.execute(
            """INSERT INTO sync_sources (source_id, tenant_ref, vendor, base_url, credential, network_id, clients,
                                         enabled, ingest_key_id, ingest_token)
               VALUES ('legacy1', $1, 1, 'https://api.meraki.com/api/v1', 'legacy-meraki-key', 'N_old', '{k1}',
                       false, 'ingestkey', 'clk_ingestkey_secret')""", tenant_ref)
        await migrate(conn)
        # the per-source key is revoked and forgotten; the plaintext waits for the application
        assert await conn.fetchval("SELECT revoked_at IS NOT NULL FROM api_keys WHERE key_id = 'ingestkey'")
        columns = {r[0] for r in await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'sync_sources'")}
        assert not columns & {"ingest_token", "ingest_key_id", "credential"}

        settings = Settings(database_url=url, secret_keys=SecretStr(b64(K1)), sync_service_key=SecretStr("clk_a_b"),
                            log_format="console", log_level="warning", sync_schedule_seconds=3600)
        from connlog.vendorsync.servicer import register

        service = await start_service("vendor-sync", settings, register, port=0)
        await service.stop(1)
        row = await conn.fetchrow(
            "SELECT credential_plaintext, credential_sealed FROM sync_sources WHERE source_id = 'legacy1'")
        assert row["credential_plaintext"] == ""
        assert Sealer([K1]).open(row["credential_sealed"], credentials.context("legacy1")) == b"legacy-meraki-key"
        assert "legacy-meraki-key" not in "".join(await _rows_text(conn, "sync_sources"))
    finally:
        await conn.close()


async def test_connlog_up_seals_with_a_generated_key_and_revokes_its_sync_key(pg_server: DatabaseServer, tmp_path):
    url = await pg_server.create_database("connlog_up_secrets", migrated=True)
    pool = await create_pool(Settings(database_url=url), url, min_size=1, max_size=2)
    accounts = AccountStore(pool)
    from connlog.suite import SYNC_KEY_DESCRIPTION

    leftover = await create_service_key(accounts, description=SYNC_KEY_DESCRIPTION)  # of a killed run
    names = ("INGEST_PORT", "QUERY_PORT", "INGEST_METRICS_PORT", "QUERY_METRICS_PORT", "GATEWAY_PORT",
             "VENDOR_SYNC_PORT", "VENDOR_SYNC_METRICS_PORT")
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONNLOG_")}
    env |= {"DATABASE_URL": url, "CONNLOG_DATA_DIR": str(tmp_path / "data"), "CONNLOG_LOG_FORMAT": "console",
            **{f"CONNLOG_{name}": str(port) for name, port in ports.items()}}
    proc = subprocess.Popen([sys.executable, "-m", "connlog", "up"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)

    def sync_keys() -> list:
        return [k for k in keys if k.role == Role.SYNC_SERVICE.value and k.description == SYNC_KEY_DESCRIPTION]

    try:
        lines: list[str] = []
        while not any("API key" in line for line in lines):
            line = await asyncio.to_thread(proc.stdout.readline)
            assert line, "connlog up exited early:\n" + "".join(lines)
            lines.append(line)
        admin = next(line for line in lines if "API key" in line).split("API key", 1)[1].split()[0]
        key_file = tmp_path / "data" / "secret-keys"
        assert key_file.stat().st_mode & 0o777 == 0o600
        keys = await accounts.list_keys()
        running = sync_keys()
        assert [k.key_id for k in running if k.revoked_at is not None] == [leftover.key_id]
        (current,) = [k for k in running if k.revoked_at is None]
        # vendor-sync seals with the generated key
        async with grpc.aio.insecure_channel(f"127.0.0.1:{ports['VENDOR_SYNC_PORT']}") as channel:
            source = spb.SyncSource(vendor=pb.VENDOR_MERAKI, base_url="https://api.meraki.com/api/v1",
                                    credential="up-credential", network_id="N_up", clients=["k1"], enabled=False)
            created = await sgrpc.VendorSyncServiceStub(channel).CreateSyncSource(
                spb.CreateSyncSourceRequest(sync_source=source), metadata=(("authorization", f"Bearer {admin}"),))
        record = await SyncStore(pool).get(created.name.removeprefix("syncSources/"))
        assert record is not None and record.credential_sealed is not None
        (file_key,) = [base64.b64decode(line) for line in key_file.read_text().split()]
        assert credentials.opened(Sealer([file_key]), record).credential == "up-credential"
    finally:
        proc.send_signal(signal.SIGINT)
        rest = await asyncio.to_thread(proc.communicate, timeout=90)
    assert proc.returncode == 0, rest
    keys = await accounts.list_keys()
    assert all(k.revoked_at is not None for k in sync_keys())  # its key ends with it
    assert current.key_id in {k.key_id for k in sync_keys()}
    await pool.close()



def test_vendor_sync_deployment_takes_its_secrets_by_reference():
    """The sealing keys (a mounted Secret, group-readable by the pod's user
    only) and the service key (a Secret reference) come from Secrets the
    operator creates; no manifest holds either."""
    from pathlib import Path

    import yaml

    deploy = Path(__file__).parent.parent / "deploy" / "kubernetes" / "base"
    docs = [d for path in deploy.glob("*.yaml") if path.name != "kustomization.yaml"
            for d in yaml.safe_load_all(path.read_text()) if d]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "vendor-sync"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["CONNLOG_SYNC_SERVICE_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "connlog-sync-service",
                                                                           "key": "key"}
    keys_file = Path(env["CONNLOG_SECRET_KEYS_FILE"]["value"])
    (mount,) = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == keys_file.parent]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == "connlog-sealing-keys"
    assert volume["secret"]["items"] == [{"key": "keys", "path": keys_file.name}]
    assert volume["secret"]["defaultMode"] & 0o007 == 0  # nothing for others
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]
    assert "CONNLOG_SECRET_KEYS" not in env
    for doc in docs:  # no manifest carries a key
        if doc["kind"] in ("Secret", "ConfigMap"):
            data = {**doc.get("data", {}), **doc.get("stringData", {})}
            assert not {"CONNLOG_SECRET_KEYS", "CONNLOG_SYNC_SERVICE_KEY", "keys", "key"} & set(data)
        assert doc["metadata"]["name"] not in ("connlog-sealing-keys", "connlog-sync-service")
