"""A run's tasks and explanations have their references checked once per statement, not once per row.

Revision ID: 20261129_05
Revises: 20261129_04
Create Date: 2026-11-29 19:30:00

A committed run COPYs about 100,000 pick tasks and 100,000 explanation rows. A foreign key is checked
row by row (a query and a FOR KEY SHARE lock on the parent row each, about 10 µs here): about 300,000
checks, over 2 s of a 10-second run. The three keys of those rows (a task's list and order line, an
explanation's run) become one anti-join per statement over the inserted rows (a transition table).

What the foreign keys gave on the parents' side is kept by a simpler rule: runs, pick lists and order
lines are records, closed or cancelled but never deleted, and their ids never change. The application
never deleted them; now the database refuses it (DELETE and TRUNCATE alike). A parent that the check
sees committed can then never disappear, so the check needs no lock on it. The children's references
never change either (a task stays on its list and line; a supervisor reassigns the list, not its tasks).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261129_05"
down_revision: str | None = "20261129_04"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (child table, column, parent table, foreign key it replaces, its ON DELETE)
REFERENCES = (
    ("pick_tasks", "pick_list_id", "pick_lists", "fk_pick_tasks_pick_list_id_pick_lists", "RESTRICT"),
    (
        "pick_tasks",
        "order_line_id",
        "dispatch_order_lines",
        "fk_pick_tasks_order_line_id_dispatch_order_lines",
        "RESTRICT",
    ),
    (
        "dispatch_run_lines",
        "run_id",
        "dispatch_runs",
        "fk_dispatch_run_lines_run_id_dispatch_runs",
        "CASCADE",
    ),
)
RECORDS = ("dispatch_runs", "pick_lists", "dispatch_order_lines")


def _columns(child: str) -> list[str]:
    return [column for table, column, *_ in REFERENCES if table == child]


def upgrade() -> None:
    # TG_ARGV holds (column, parent table) pairs; every parent's key is `id`.
    op.execute("""
        CREATE FUNCTION check_references() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
            i integer := 0;
            missing bigint;
        BEGIN
            WHILE i < TG_NARGS LOOP
                EXECUTE format(
                    'SELECT r.%1$I FROM inserted r WHERE NOT EXISTS '
                    '(SELECT FROM %2$I p WHERE p.id = r.%1$I) LIMIT 1',
                    TG_ARGV[i], TG_ARGV[i + 1]) INTO missing;
                IF missing IS NOT NULL THEN
                    RAISE EXCEPTION 'insert into % refused: % % is not in %',
                        TG_TABLE_NAME, TG_ARGV[i], missing, TG_ARGV[i + 1]
                        USING ERRCODE = 'foreign_key_violation';
                END IF;
                i := i + 2;
            END LOOP;
            RETURN NULL;
        END $$
    """)
    op.execute("""
        CREATE FUNCTION refuse_record_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% keeps its rows for good: close or cancel them (% refused)', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'restrict_violation';
        END $$
    """)
    op.execute("""
        CREATE FUNCTION refuse_reference_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'update of % refused: ids and references never change', TG_TABLE_NAME
                USING ERRCODE = 'restrict_violation';
        END $$
    """)
    for table in RECORDS:
        op.execute(f"""
            CREATE TRIGGER {table}_kept BEFORE DELETE OR TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION refuse_record_delete()
        """)
        op.execute(f"""
            CREATE TRIGGER {table}_id_fixed BEFORE UPDATE OF id ON {table}
            FOR EACH ROW WHEN (OLD.id <> NEW.id) EXECUTE FUNCTION refuse_reference_change()
        """)
    for child, _column, _parent, constraint, _on_delete in REFERENCES:
        op.execute(f"ALTER TABLE {child} DROP CONSTRAINT {constraint}")
    for child in dict.fromkeys(table for table, *_ in REFERENCES):
        columns = _columns(child)
        pairs = ", ".join(
            f"'{column}', '{parent}'" for table, column, parent, *_ in REFERENCES if table == child
        )
        changed = " OR ".join(f"OLD.{column} <> NEW.{column}" for column in columns)
        op.execute(f"""
            CREATE TRIGGER {child}_references AFTER INSERT ON {child}
            REFERENCING NEW TABLE AS inserted
            FOR EACH STATEMENT EXECUTE FUNCTION check_references({pairs})
        """)
        op.execute(f"""
            CREATE TRIGGER {child}_references_fixed BEFORE UPDATE OF {", ".join(columns)} ON {child}
            FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION refuse_reference_change()
        """)


def downgrade() -> None:
    for child in dict.fromkeys(table for table, *_ in REFERENCES):
        op.execute(f"DROP TRIGGER {child}_references_fixed ON {child}")
        op.execute(f"DROP TRIGGER {child}_references ON {child}")
    for child, column, parent, constraint, on_delete in REFERENCES:
        op.execute(
            f"ALTER TABLE {child} ADD CONSTRAINT {constraint} FOREIGN KEY ({column}) "
            f"REFERENCES {parent} (id) ON DELETE {on_delete}"
        )
    for table in RECORDS:
        op.execute(f"DROP TRIGGER {table}_id_fixed ON {table}")
        op.execute(f"DROP TRIGGER {table}_kept ON {table}")
    op.execute("DROP FUNCTION refuse_reference_change()")
    op.execute("DROP FUNCTION refuse_record_delete()")
    op.execute("DROP FUNCTION check_references()")
