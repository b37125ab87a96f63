"""cases per (status, kind), kept by the database for the work queue's counts

The counts above the work queue read, per status, how many open cases a coordinator's queues
hold. Counted from the referral table, that cost grows with the open workload (30,000 index
entries at the benchmark's 1,000,000 cases); read from this table it is a sum over a few hundred
rows whatever the size. Triggers keep it, so no code path that writes a case can forget it.

Every status is counted, terminal ones too: which statuses are open is the application's
business (intake/domain/statuses.py), not this table's. Each (status, kind) is spread over eight
slots by case id, so concurrent submissions rarely wait on one row's lock until they commit.
On PostgreSQL the triggers are per statement with transition tables: a bulk load or a
multi-row update costs one aggregate, not one upsert per row.

The partial index that answered the counts before (ix_referral_open_counts) goes: nothing
else reads it, and every write of a case paid for it.

Revision ID: 0011_case_counts
Revises: 0010_alert_ack
"""

from alembic import op
import sqlalchemy as sa

revision = "0011_case_counts"
down_revision = "0010_alert_ack"
branch_labels = None
depends_on = None

SLOTS = 8

PG_FUNCTION = f"""
CREATE FUNCTION referral_count_cases() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO referral_count (status, kind, slot, cases)
        SELECT status, kind, id % {SLOTS}, count(*) FROM new_rows
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (status, kind, slot) DO UPDATE SET cases = referral_count.cases + EXCLUDED.cases;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO referral_count (status, kind, slot, cases)
        SELECT status, kind, id % {SLOTS}, -count(*) FROM old_rows
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (status, kind, slot) DO UPDATE SET cases = referral_count.cases + EXCLUDED.cases;
    ELSIF TG_OP = 'TRUNCATE' THEN
        DELETE FROM referral_count;
    ELSE
        -- Most updates change neither status nor kind: their deltas cancel and nothing is
        -- written (no row lock taken).
        INSERT INTO referral_count (status, kind, slot, cases)
        SELECT status, kind, slot, sum(delta) FROM (
            SELECT status, kind, id % {SLOTS} AS slot, 1 AS delta FROM new_rows
            UNION ALL
            SELECT status, kind, id % {SLOTS}, -1 FROM old_rows
        ) AS change
        GROUP BY 1, 2, 3 HAVING sum(delta) <> 0 ORDER BY 1, 2, 3
        ON CONFLICT (status, kind, slot) DO UPDATE SET cases = referral_count.cases + EXCLUDED.cases;
    END IF;
    RETURN NULL;
END
$$
"""

PG_TRIGGERS = [
    "CREATE TRIGGER referral_count_insert AFTER INSERT ON referral "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION referral_count_cases()",
    "CREATE TRIGGER referral_count_update AFTER UPDATE ON referral "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION referral_count_cases()",
    "CREATE TRIGGER referral_count_delete AFTER DELETE ON referral "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION referral_count_cases()",
    "CREATE TRIGGER referral_count_truncate AFTER TRUNCATE ON referral "
    "FOR EACH STATEMENT EXECUTE FUNCTION referral_count_cases()",
]
TRIGGER_NAMES = (
    "referral_count_insert",
    "referral_count_update",
    "referral_count_delete",
    "referral_count_truncate",  # PostgreSQL only (SQLite has no TRUNCATE)
)

_ADD_NEW = (
    f"INSERT INTO referral_count (status, kind, slot, cases) "
    f"VALUES (NEW.status, NEW.kind, NEW.id % {SLOTS}, 1) "
    "ON CONFLICT (status, kind, slot) DO UPDATE SET cases = cases + 1;"
)
_TAKE_OLD = (
    f"UPDATE referral_count SET cases = cases - 1 "
    f"WHERE status = OLD.status AND kind = OLD.kind AND slot = OLD.id % {SLOTS};"
)
SQLITE_TRIGGERS = [
    f"CREATE TRIGGER referral_count_insert AFTER INSERT ON referral BEGIN {_ADD_NEW} END",
    "CREATE TRIGGER referral_count_update AFTER UPDATE OF status, kind ON referral "
    "WHEN OLD.status IS NOT NEW.status OR OLD.kind IS NOT NEW.kind "
    f"BEGIN {_TAKE_OLD} {_ADD_NEW} END",
    f"CREATE TRIGGER referral_count_delete AFTER DELETE ON referral BEGIN {_TAKE_OLD} END",
]

OPEN_ONLY = sa.text("status NOT IN ('withdrawn', 'closed_no_response', 'closed')")

# Overwrites what a trigger may have counted between its creation and this statement (SQLite
# commits DDL as it goes): the fill is one statement, so it sees every case exactly once.
# ("WHERE true": SQLite's upsert after INSERT ... SELECT needs it to parse.)
FILL = (
    f"INSERT INTO referral_count (status, kind, slot, cases) "
    f"SELECT status, kind, id % {SLOTS}, count(*) FROM referral WHERE true GROUP BY 1, 2, 3 "
    "ON CONFLICT (status, kind, slot) DO UPDATE SET cases = EXCLUDED.cases"
)


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        # The strongest lock first (dropping the index needs it anyway): taking weaker ones
        # first and upgrading later could deadlock with a live session. Held to the commit, so
        # no case is written between the triggers and the fill.
        op.execute("LOCK TABLE referral IN ACCESS EXCLUSIVE MODE")
    op.drop_index("ix_referral_open_counts", table_name="referral")
    op.create_table(
        "referral_count",
        sa.Column("status", sa.String(32), primary_key=True),
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("slot", sa.SmallInteger(), primary_key=True),
        sa.Column("cases", sa.BigInteger(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for statement in PG_TRIGGERS:
            op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)
    op.execute(FILL)


def downgrade():
    op.create_index(
        "ix_referral_open_counts",
        "referral",
        ["status", "kind"],
        postgresql_where=OPEN_ONLY,
        sqlite_where=OPEN_ONLY,
    )
    for name in TRIGGER_NAMES:
        if op.get_bind().dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON referral")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS referral_count_cases()")
    op.drop_table("referral_count")
