"""The schema, as SQLAlchemy Core tables. Alembic migrations create it; code queries through it.

Every table of tenant data has a primary key, unique constraints and indexes that start with
``tenant_id`` so it can be distributed by tenant. Times are integer microseconds (UTC), ids 64-bit
integers. Optional references and SDK ids are NULL when absent so partial indexes stay small.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Micros = sa.BigInteger

service_state = sa.Table(
    "service_state",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(512), nullable=False),
)

# Who holds each id node number, until when (microseconds); see db.nodes.
id_nodes = sa.Table(
    "id_nodes",
    metadata,
    sa.Column("node", sa.Integer, primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("expires_at", Micros, nullable=False),
)

tenants = sa.Table(
    "tenants",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("domain", sa.String(253), nullable=True, unique=True),
    sa.Column("timezone", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("updated_at", Micros, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("tenant_id", sa.BigInteger, sa.ForeignKey("tenants.id"), nullable=False, index=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("revoked_at", Micros, nullable=True),
    sa.Column("expires_at", Micros, nullable=True),
    # Updated at most once a minute per key (keys.service.authenticate), not on every request.
    sa.Column("last_used_at", Micros, nullable=True),
)

# A PBX that posts CDRs with its own credentials (HTTP Basic: name and secret), for the tenants
# bound to it in pbx_tenants. The secret is stored as SHA-256; after a rotation the previous one
# keeps working until previous_until.
pbx_accounts = sa.Table(
    "pbx_accounts",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("previous_hash", sa.String(64), nullable=True),
    sa.Column("previous_until", Micros, nullable=True),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("revoked_at", Micros, nullable=True),
)

pbx_tenants = sa.Table(
    "pbx_tenants",
    metadata,
    sa.Column("pbx_id", sa.BigInteger, sa.ForeignKey("pbx_accounts.id"), primary_key=True),
    sa.Column("tenant_id", sa.BigInteger, sa.ForeignKey("tenants.id"), primary_key=True),
)

# Numbers that route a PBX's CDRs to a tenant when the CDR names no tenant's domain: assigned
# by the operator, one tenant per number (a tenant's own hotlines never route).
routing_numbers = sa.Table(
    "routing_numbers",
    metadata,
    sa.Column("number_norm", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.BigInteger, sa.ForeignKey("tenants.id"), nullable=False, index=True),
    sa.Column("created_at", Micros, nullable=False),
)


def _tenant_fk(column: str, table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["tenant_id", column], [f"{table}.tenant_id", f"{table}.id"])


hotlines = sa.Table(
    "hotlines",
    metadata,
    sa.Column("tenant_id", sa.BigInteger, sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hotline", sa.String(32), nullable=False),
    sa.Column("hotline_norm", sa.String(32), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.String(1000), nullable=False),
    sa.Column("network", sa.String(16), nullable=False),
    sa.Column("is_free_charge", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(1), nullable=False),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("updated_at", Micros, nullable=False),
    sa.Index(None, "tenant_id", "created_at", "id"),
    sa.Index(None, "tenant_id", "hotline_norm"),
)

departments = sa.Table(
    "departments",
    metadata,
    sa.Column("tenant_id", sa.BigInteger, sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("updated_at", Micros, nullable=False),
    sa.Index(None, "tenant_id", "created_at", "id"),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("tenant_id", sa.BigInteger, sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("full_name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(254), nullable=False),
    sa.Column("phone", sa.String(32), nullable=False),
    sa.Column("department_id", sa.BigInteger, nullable=True),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("updated_at", Micros, nullable=False),
    _tenant_fk("department_id", "departments"),
    sa.Index(None, "tenant_id", "created_at", "id"),
    sa.Index(None, "tenant_id", "department_id", "id"),
)

extensions = sa.Table(
    "extensions",
    metadata,
    sa.Column("tenant_id", sa.BigInteger, sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("extension_number", sa.String(32), nullable=False),
    sa.Column("extension_password", sa.String(255), nullable=False),  # sealed (sealing.py)
    sa.Column("hotline_id", sa.BigInteger, nullable=True),
    sa.Column("user_id", sa.BigInteger, nullable=True),
    sa.Column("account_id", sa.BigInteger, nullable=True),
    sa.Column("subscription_id", sa.BigInteger, nullable=True),
    sa.Column("state", sa.String(1), nullable=False),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("updated_at", Micros, nullable=False),
    sa.Column("expires_at", Micros, nullable=True),
    _tenant_fk("hotline_id", "hotlines"),
    _tenant_fk("user_id", "users"),
    sa.UniqueConstraint("tenant_id", "extension_number"),
    sa.Index(None, "tenant_id", "created_at", "id"),
    sa.Index(None, "tenant_id", "user_id"),
)

# On PostgreSQL call logs are range-partitioned by month of started_at (see
# db.partitions), so the primary key holds started_at, and it doubles as
# the index of the default sort. PostgreSQL cannot enforce (tenant_id, source_id) uniqueness
# across partitions: ingest takes a per-tenant lock instead (ingest.repository.lock_for_ingest).
call_logs = sa.Table(
    "call_logs",
    metadata,
    sa.Column("tenant_id", sa.BigInteger, nullable=False),
    sa.Column("id", sa.BigInteger, nullable=False, autoincrement=False),
    sa.Column("source_id", sa.String(255), nullable=False),
    sa.Column("caller", sa.String(64), nullable=False),
    sa.Column("callee", sa.String(64), nullable=False),
    sa.Column("caller_norm", sa.String(64), nullable=False),
    sa.Column("callee_norm", sa.String(64), nullable=False),
    sa.Column("direction", sa.String(8), nullable=False),
    sa.Column("call_state", sa.String(16), nullable=False),
    sa.Column("call_status", sa.String(1), nullable=False),
    sa.Column("started_at", Micros, nullable=False),
    sa.Column("ended_at", Micros, nullable=True),
    sa.Column("duration", sa.Integer, nullable=False),
    sa.Column("extension_id", sa.BigInteger, nullable=True),
    sa.Column("user_id", sa.BigInteger, nullable=True),
    sa.Column("hotline_id", sa.BigInteger, nullable=True),
    sa.Column("contact_id", sa.BigInteger, nullable=True),
    sa.Column("external_id", sa.String(255), nullable=True),
    sa.Column("external_session_id", sa.String(255), nullable=True),
    # Stored already encoded in their wire form, so a page is served without re-encoding them.
    sa.Column("recording_urls", sa.Text, nullable=False),
    sa.Column("call_targets", sa.Text, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("updated_at", Micros, nullable=False),
    # The call log's whole wire JSON, rendered when the row is written (calllogs.documents):
    # a page is the stored documents joined, not 20 columns per row decoded and re-encoded.
    sa.Column("doc", sa.LargeBinary, nullable=False),
    # The tenant's change sequence number of the row's last write (the change feed's order;
    # see change_counters). NULL only for calls stored before the feed existed.
    sa.Column("change_seq", sa.BigInteger, nullable=True),
    sa.PrimaryKeyConstraint("tenant_id", "started_at", "id"),
    postgresql_partition_by="RANGE (started_at)",
)
# GetCallLog by id, and the feed: by change, and the calls stored before it existed by id.
sa.Index("ix_call_logs_id", call_logs.c.tenant_id, call_logs.c.id)
_SEQUENCED = call_logs.c.change_seq.isnot(None)
sa.Index(
    "ix_call_logs_change_seq",
    call_logs.c.tenant_id,
    call_logs.c.change_seq,
    sqlite_where=_SEQUENCED,
    postgresql_where=_SEQUENCED,
)
_UNSEQUENCED = call_logs.c.change_seq.is_(None)
sa.Index(
    "ix_call_logs_unsequenced",
    call_logs.c.tenant_id,
    call_logs.c.id,
    sqlite_where=_UNSEQUENCED,
    postgresql_where=_UNSEQUENCED,
)

# Each tenant's last change sequence number. Every write of a call log or an erasure takes
# the next numbers under this row's lock, held to the commit: a tenant's changes commit in
# the order of their numbers, so a reader never passes a number that commits later.
change_counters = sa.Table(
    "change_counters",
    metadata,
    sa.Column("tenant_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
)

# Calls erased at a tenant's request (DeleteCallLogs): the feed's deletions, and what keeps a
# PBX re-delivering the same CDR from storing the call again.
call_log_erasures = sa.Table(
    "call_log_erasures",
    metadata,
    sa.Column("tenant_id", sa.BigInteger, nullable=False),
    sa.Column("id", sa.BigInteger, nullable=False, autoincrement=False),
    sa.Column("source_id", sa.String(255), nullable=False),
    sa.Column("erased_at", Micros, nullable=False),
    sa.Column("change_seq", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "id"),
    sa.UniqueConstraint("tenant_id", "source_id"),
    sa.Index(None, "tenant_id", "change_seq"),
)
sa.Index("uq_call_logs_source", call_logs.c.tenant_id, call_logs.c.source_id, unique=True).ddl_if(
    dialect="sqlite"
)
sa.Index("ix_call_logs_source", call_logs.c.tenant_id, call_logs.c.source_id).ddl_if(
    dialect="postgresql"
)

_NOT_NULL = {
    "extension_id": call_logs.c.extension_id.isnot(None),
    "hotline_id": call_logs.c.hotline_id.isnot(None),
    "user_id": call_logs.c.user_id.isnot(None),
    "external_id": call_logs.c.external_id.isnot(None),
    "external_session_id": call_logs.c.external_session_id.isnot(None),
}

# The default order with the duration beside it: a duration filter is checked in the index, and
# only matching calls are read from the table.
sa.Index(
    "ix_call_logs_started_at_duration",
    call_logs.c.tenant_id,
    call_logs.c.started_at,
    call_logs.c.id,
    call_logs.c.duration,
)
# Long calls again, by tiers of at least so many seconds: a filter for long calls walks its
# tier's index, not every call. Only calls of a tier are written to its index.
# The condition reads "duration + 0", as the query states it: a plain "duration >= 300" in the
# query would also offer the duration-sorted index, which SQLite took, then sorted every match.
LONG_CALL_TIERS = (300, 1800)


def unindexed_duration() -> sa.ColumnElement[int]:
    """The duration as an expression no index is sorted by ("+ 0" written in the SQL, not sent
    as a parameter, which PostgreSQL's generic plans could not match to an index condition)."""
    return call_logs.c.duration + sa.literal_column("0")


def long_calls(tier: int) -> sa.ColumnElement[bool]:
    return unindexed_duration() >= sa.literal_column(str(tier))


for _tier in LONG_CALL_TIERS:
    _long = long_calls(_tier)
    sa.Index(
        f"ix_call_logs_over_{_tier}s",
        call_logs.c.tenant_id,
        call_logs.c.started_at,
        call_logs.c.id,
        call_logs.c.duration,
        sqlite_where=_long,
        postgresql_where=_long,
    )
# One index per other sort key, and one per filter followed by the default sort key.
for _sort in ("created_at", "updated_at", "duration"):
    sa.Index(f"ix_call_logs_{_sort}", call_logs.c.tenant_id, call_logs.c[_sort], call_logs.c.id)
for _col in ("direction", "call_state", "caller_norm", "callee_norm", *_NOT_NULL):
    _where = _NOT_NULL.get(_col)
    sa.Index(
        f"ix_call_logs_{_col}_started_at",
        call_logs.c.tenant_id,
        call_logs.c[_col],
        call_logs.c.started_at,
        call_logs.c.id,
        sqlite_where=_where,
        postgresql_where=_where,
    )

# A result row of any shape (SQLAlchemy 2.1 types rows by their column types).
AnyRow: TypeAlias = sa.Row[*tuple[Any, ...]]

# The legs of calls as PBXs report them (one FreeSWITCH CDR per channel, one Asterisk row per
# A→B pairing). A call log is rebuilt from all legs of its call whenever one arrives, so legs may
# come in any order, in any batch, any number of times.
call_legs = sa.Table(
    "call_legs",
    metadata,
    sa.Column("tenant_id", sa.BigInteger, nullable=False),
    sa.Column("call_source_id", sa.String(255), nullable=False),
    sa.Column("leg_id", sa.String(255), nullable=False),
    sa.Column("started_at", Micros, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "call_source_id", "leg_id"),
)

# Statistics kept as calls are written (rollups.service): per tenant, sums by the tenant's local
# day, alone and by each dimension GetCallStats groups by, and by local hour.
# ``wait_hist`` is JSON, {whole seconds to answer: calls}.
_MEASURES = (
    ("calls", sa.Integer),
    ("answered", sa.Integer),
    ("missed", sa.Integer),
    ("abandoned", sa.Integer),
    ("talk", sa.BigInteger),
    ("waits", sa.Integer),
    ("wait_us", sa.BigInteger),
)


def _measures() -> list[sa.Column[Any]]:
    return [
        *(sa.Column(name, kind, nullable=False) for name, kind in _MEASURES),
        sa.Column("wait_hist", sa.Text, nullable=False),
    ]


call_stats_days = sa.Table(
    "call_stats_days",
    metadata,
    sa.Column("tenant_id", sa.BigInteger, nullable=False),
    sa.Column("day", sa.Integer, nullable=False),  # local days since 1970-01-01
    # "" (all the day's calls), extension, user, hotline or direction; and its value ("" for
    # calls without one): a call adds to one row of each.
    sa.Column("dim", sa.String(16), nullable=False),
    sa.Column("value", sa.String(32), nullable=False),
    *_measures(),
    sa.PrimaryKeyConstraint("tenant_id", "day", "dim", "value"),
)
call_stats_hours = sa.Table(
    "call_stats_hours",
    metadata,
    sa.Column("tenant_id", sa.BigInteger, nullable=False),
    sa.Column("hour", sa.Integer, nullable=False),  # local hours since 1970-01-01 00:00
    *_measures(),
    sa.PrimaryKeyConstraint("tenant_id", "hour"),
)

# Webhooks (webhooks/): a tenant's endpoints; the outbox of call events, written in the
# transaction of the change that caused them; one delivery per (event, endpoint), and each
# attempt at it. Deliveries still to make are the only rows the partial indexes hold.
_PENDING = sa.text("state = 'pending'")
_LEASED = sa.text("lease_until IS NOT NULL")
webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("tenant_id", sa.BigInteger, nullable=False),
    sa.Column("id", sa.BigInteger, nullable=False, autoincrement=False),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("events", sa.String(200), nullable=False),  # comma-separated event types
    sa.Column("description", sa.String(500), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("disabled_reason", sa.String(500), nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),  # deliveries failed in a row
    sa.Column("secret", sa.Text, nullable=False),  # sealed (kit.sealing)
    sa.Column("previous_secret", sa.Text, nullable=True),  # sealed; signs too until:
    sa.Column("previous_until", Micros, nullable=True),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("updated_at", Micros, nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "id"),
)
webhook_events = sa.Table(
    "webhook_events",
    metadata,
    sa.Column("tenant_id", sa.BigInteger, nullable=False),
    sa.Column("id", sa.BigInteger, nullable=False, autoincrement=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("call_id", sa.BigInteger, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),  # the call's change number at this event
    sa.Column("occurred_at", Micros, nullable=False),
    sa.Column("data", sa.Text, nullable=False),  # the payload's "data": the call log's JSON
    sa.PrimaryKeyConstraint("tenant_id", "id"),
    sa.Index(None, "tenant_id", "call_id"),
)
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("tenant_id", sa.BigInteger, nullable=False),
    sa.Column("id", sa.BigInteger, nullable=False, autoincrement=False),
    sa.Column("endpoint_id", sa.BigInteger, nullable=False),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Column("call_id", sa.BigInteger, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending, succeeded, failed
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_at", Micros, nullable=False),
    sa.Column("lease_until", Micros, nullable=True),  # a worker is sending it until then
    sa.Column("retry_from", Micros, nullable=False),  # retried for a while from then on
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("finished_at", Micros, nullable=True),
    sa.Column("last_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.String(500), nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "id"),
    sa.Index(None, "tenant_id", "endpoint_id", "created_at"),
    sa.Index(None, "tenant_id", "event_id"),
    sa.Index(
        "ix_webhook_deliveries_due",
        "tenant_id",
        "endpoint_id",
        "next_at",
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    ),
    sa.Index(
        "ix_webhook_deliveries_leased",
        "tenant_id",
        "endpoint_id",
        "lease_until",
        sqlite_where=_LEASED,
        postgresql_where=_LEASED,
    ),
    sa.Index(
        "ix_webhook_deliveries_call",
        "tenant_id",
        "endpoint_id",
        "call_id",
        "seq",
        sqlite_where=_PENDING,
        postgresql_where=_PENDING,
    ),
)
webhook_attempts = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("tenant_id", sa.BigInteger, nullable=False),
    sa.Column("delivery_id", sa.BigInteger, nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("at", Micros, nullable=False),
    sa.Column("code", sa.Integer, nullable=True),  # the HTTP status, if one came back
    sa.Column("latency_ms", sa.Integer, nullable=False),
    sa.Column("error", sa.String(500), nullable=False),
    sa.PrimaryKeyConstraint("tenant_id", "delivery_id", "attempt"),
)


# Recordings (recordings/): audio uploaded for a call, the bytes in the recordings store under
# ``key`` of ``store`` (its URL); ``source`` is the name or path the uploader gave (the PBX's),
# ``name`` its file name.
# ``gone_at``: its call was erased or expired; the bytes are deleted, then the row.
_GONE = sa.text("gone_at IS NOT NULL")
recordings = sa.Table(
    "recordings",
    metadata,
    sa.Column("tenant_id", sa.BigInteger, nullable=False),
    sa.Column("id", sa.BigInteger, nullable=False, autoincrement=False),
    sa.Column("call_id", sa.BigInteger, nullable=False),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("source", sa.String(2048), nullable=False),
    sa.Column("store", sa.String(1000), nullable=False),
    sa.Column("key", sa.String(300), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("created_at", Micros, nullable=False),
    sa.Column("started_at", Micros, nullable=False),  # the call's
    sa.Column("gone_at", Micros, nullable=True),
    sa.PrimaryKeyConstraint("tenant_id", "id"),
    sa.Index("ix_recordings_call", "tenant_id", "call_id", "name", unique=True),
    sa.Index(
        "ix_recordings_gone", "tenant_id", "gone_at", sqlite_where=_GONE, postgresql_where=_GONE
    ),
)
