"""Products keep their name folded for the stock search (lower case, no accents, œ/æ spelled out).

Revision ID: 20261129_04
Revises: 20261129_03
Create Date: 2026-11-29 17:40:00

The search folded every product name of the catalogue on every keystroke (`translate` with multibyte
sets, about 4 µs a name, behind a cheaper ILIKE pass): most of its time in PostgreSQL. A stored
generated column folds each name once, when it is written; the search compares words with a plain
LIKE. The expression is app/db/folding.py's `fold_sql("name")` as of this revision. Adding a stored
generated column rewrites the table once (2,000 products: a few milliseconds).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "20261129_04"
down_revision: str | None = "20261129_03"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FOLDED_NAME = (
    "lower(replace(replace(replace(replace(translate(name,"
    " 'àâäáãåÀÂÄÁÃÅçÇéèêëÉÈÊËíìîïÍÌÎÏñÑóòôöõÓÒÔÖÕúùûüÚÙÛÜýÿÝŸ',"
    " 'aaaaaaAAAAAAcCeeeeEEEEiiiiIIIInNoooooOOOOOuuuuUUUUyyYY'),"
    " 'œ', 'oe'), 'Œ', 'oe'), 'æ', 'ae'), 'Æ', 'ae'))"
)


def upgrade() -> None:
    op.execute(f"ALTER TABLE products ADD COLUMN search_name text GENERATED ALWAYS AS ({FOLDED_NAME}) STORED")


def downgrade() -> None:
    op.execute("ALTER TABLE products DROP COLUMN search_name")
