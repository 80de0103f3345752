"""The tenant-key checker (connlog.devtools.tenant_sql) itself: statements
that must pass and statements that must fail, with what each finding says."""

from __future__ import annotations

import pytest

from connlog.devtools import tenant_sql

CONSTRAINTS = {"connection_rollups_key": ["tenant_ref", "network_ref", "hour"], "other_key": ["id"]}

PASS = [
    ("equality", "SELECT e.id FROM connection_events e WHERE e.id = $1 AND e.tenant_ref = $2"),
    ("equality, reversed", "SELECT 1 FROM connection_events e WHERE $1 = e.tenant_ref"),
    ("unqualified", "SELECT EXISTS (SELECT 1 FROM connection_events WHERE tenant_ref = $1 AND client_id = $2)"),
    ("by table name", "SELECT 1 FROM connection_events WHERE connection_events.tenant_ref = $1"),
    ("cast", "SELECT 1 FROM connection_events e WHERE e.tenant_ref = $1::int"),
    ("= ANY", "SELECT 1 FROM connection_events e WHERE e.tenant_ref = ANY($1::int[])"),
    ("IN", "SELECT 1 FROM connection_events e WHERE e.tenant_ref IN (1, 2)"),
    ("IS TRUE", "SELECT 1 FROM connection_events e WHERE (e.tenant_ref = ANY($1::int[])) IS TRUE AND e.id > $2"),
    ("join ON", "SELECT 1 FROM networks n JOIN connection_events e "
                "ON e.tenant_ref = $1 AND e.network_ref = n.network_ref"),
    ("USING with a pinned table", "SELECT 1 FROM connection_events e JOIN access_points a USING (tenant_ref) "
                                  "WHERE a.tenant_ref = $1"),
    ("co-located equality", "SELECT 1 FROM connection_events e JOIN connection_rollups r "
                            "ON r.tenant_ref = e.tenant_ref WHERE r.tenant_ref = $1"),
    ("CTE and UNION arms", "WITH x AS (SELECT tenant_ref FROM connection_events e WHERE e.tenant_ref = $1 "
                           "UNION ALL SELECT tenant_ref FROM connection_rollups e WHERE e.tenant_ref = $1) "
                           "SELECT * FROM x JOIN networks n USING (tenant_ref)"),
    ("a CTE named like no table", "WITH e AS (SELECT 1) SELECT * FROM e"),
    ("other tables", "SELECT * FROM api_keys k LEFT JOIN tenants t USING (tenant_ref) WHERE k.key_id = $1"),
    ("insert", "INSERT INTO connection_events (tenant_ref, id) SELECT $1, 1 "
               "ON CONFLICT (tenant_ref, occurred_at, dedup_key) DO NOTHING"),
    ("insert, known constraint", "INSERT INTO connection_rollups AS r (tenant_ref, events) VALUES (1, 1) "
                                 "ON CONFLICT ON CONSTRAINT connection_rollups_key DO UPDATE SET events = 1"),
    ("insert without conflict clause", "INSERT INTO access_points (tenant_ref, serial) VALUES ($1, $2)"),
    ("update", "UPDATE access_points SET name = $3 WHERE tenant_ref = $1 AND serial = $2"),
    ("delete", "DELETE FROM connection_rollups r WHERE r.tenant_ref = $1 AND r.hour < $2"),
    ("copy in", "COPY connection_events (tenant_ref, id) FROM STDIN"),
    ("create with keys", "CREATE TABLE connection_rollups (tenant_ref int, hour timestamptz, "
                         "UNIQUE (tenant_ref, hour))"),
    ("key with the tenant anywhere", "ALTER TABLE connection_events ADD CONSTRAINT connection_events_pkey "
                                     "PRIMARY KEY (id, occurred_at, tenant_ref)"),
    ("unique index", "CREATE UNIQUE INDEX x ON connection_events (tenant_ref, id, occurred_at)"),
    ("plain index", "CREATE INDEX x ON connection_events (network_ref, occurred_at, id)"),
    ("partition", "CREATE TABLE connection_events_p20250101 PARTITION OF connection_events "
                  "FOR VALUES FROM ('2025-01-01') TO ('2025-01-02')"),
    ("a subquery keyed on its own", "SELECT (SELECT count(*) FROM connection_events e "
                                    "WHERE e.tenant_ref = t.tenant_ref AND e.tenant_ref = $1) FROM tenants t"),
]

FAIL = [
    ("no condition", "SELECT count(*) FROM connection_events", "connection_events: read without"),
    ("other column", "SELECT 1 FROM connection_events e WHERE e.id = $1", "read without a tenant_ref condition (as e)"),
    ("under OR", "SELECT 1 FROM connection_events e WHERE ($1::int IS NULL OR e.tenant_ref = $1)", "read without"),
    ("IS NOT TRUE", "SELECT 1 FROM connection_events e WHERE (e.tenant_ref = $1) IS NOT TRUE", "read without"),
    ("another table's tenant", "SELECT 1 FROM connection_events e JOIN networks n USING (network_ref) "
                               "WHERE n.tenant_ref = $1", "(as e)"),
    ("equal to a column", "SELECT 1 FROM connection_events e, tenants t WHERE e.tenant_ref = t.tenant_ref",
     "read without"),
    ("not equality", "SELECT 1 FROM connection_events e WHERE e.tenant_ref > $1", "read without"),
    ("left join ON does not pin the left side", "SELECT 1 FROM connection_events e LEFT JOIN networks n "
                                                "ON e.tenant_ref = $1", "(as e)"),
    ("subquery", "SELECT 1 FROM tenants t WHERE t.tenant_ref = $1 AND EXISTS (SELECT 1 FROM connection_rollups r "
                 "WHERE r.hour > $2)", "connection_rollups: read without"),
    ("one UNION arm", "SELECT id FROM connection_events WHERE tenant_ref = $1 UNION SELECT id FROM connection_events",
     "read without"),
    ("partition by name", "SELECT 1 FROM connection_events_p20250101", "connection_events: read without"),
    ("update", "UPDATE access_points SET name = $1 WHERE serial = $2", "access_points: read without"),
    ("delete", "DELETE FROM connection_rollups WHERE hour < $1", "connection_rollups: read without"),
    ("insert without the tenant", "INSERT INTO connection_events (id) VALUES (1)", "does not name tenant_ref"),
    ("conflict target without it", "INSERT INTO access_points (tenant_ref, serial) VALUES (1, 'x') "
                                    "ON CONFLICT (serial) DO NOTHING", "ON CONFLICT (serial) lacks tenant_ref"),
    ("conflict on an unknown constraint", "INSERT INTO connection_rollups (tenant_ref) VALUES (1) "
                                          "ON CONFLICT ON CONSTRAINT nope DO NOTHING", "constraint not known"),
    ("conflict on a constraint without it", "INSERT INTO connection_rollups (tenant_ref) VALUES (1) "
                                            "ON CONFLICT ON CONSTRAINT other_key DO NOTHING", "other_key lacks"),
    ("conflict without a target", "INSERT INTO connection_rollups (tenant_ref) VALUES (1) ON CONFLICT DO NOTHING",
     "without a conflict target"),
    ("insert ... select unkeyed",
     "INSERT INTO connection_rollups (tenant_ref) SELECT tenant_ref FROM connection_events",
     "connection_events: read without"),
    ("copy out", "COPY connection_events TO STDOUT", "COPY ... TO reads every tenant"),
    ("merge", "MERGE INTO access_points a USING x ON a.serial = x.serial WHEN MATCHED THEN DO NOTHING",
     "MERGE is not checked"),
    ("old primary key", "CREATE TABLE connection_events (id bigint, occurred_at timestamptz, "
                        "PRIMARY KEY (id, occurred_at))", "primary key constraint on (id, occurred_at) lacks"),
    ("column key", "CREATE TABLE access_points (serial text PRIMARY KEY)", "primary key constraint on (serial)"),
    ("added key", "ALTER TABLE connection_events ADD CONSTRAINT k UNIQUE (dedup_key)", "unique constraint k on"),
    ("unique index", "CREATE UNIQUE INDEX x ON connection_rollups (hour)", "unique index x on (hour) lacks"),
]


@pytest.mark.parametrize(("case", "sql"), PASS, ids=[c for c, _ in PASS])
def test_keyed_statements_pass(case, sql):
    assert tenant_sql.check_sql(sql, constraints=CONSTRAINTS) == []


@pytest.mark.parametrize(("case", "sql", "finding"), FAIL, ids=[c for c, _, _ in FAIL])
def test_unkeyed_statements_fail(case, sql, finding):
    findings = tenant_sql.check_sql(sql, constraints=CONSTRAINTS)
    assert findings, sql
    assert any(finding in str(f) for f in findings), findings


@pytest.mark.parametrize(("sql", "touches"), [
    ("SELECT 1 FROM connection_events_p20250101", True),
    ("SELECT relname FROM pg_class WHERE relname = 'connection_events'", False),
    ("DROP TABLE connection_events_p20250101", False),
    ("INSERT INTO access_points (tenant_ref) VALUES (1)", True),
])
def test_which_statements_touch_distributed_tables(sql, touches):
    assert tenant_sql.touches_distributed(sql) is touches


def test_fingerprints_ignore_constants_parameters_and_layout():
    assert tenant_sql.fingerprint("SELECT a FROM t WHERE b = $1") == tenant_sql.fingerprint(
        "select a\n  from t where b = 42")
    assert tenant_sql.fingerprint("SELECT a FROM t") != tenant_sql.fingerprint("SELECT a FROM u")
