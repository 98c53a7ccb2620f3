"""The results tables: variants, runs, metrics, predictions, records, engines, pushes.

Revision ID: 0001
Revises: (none)

A new database gets the tables as ``hub.db.schema`` defines them. A database an earlier
evalhub wrote (before Alembic: no ``alembic_version`` table) is upgraded in place: tables it
lacks are created, columns added since get their defaults (``runs.suite_steps``: runs from
before suites were recorded read as ``[]``), and every row stays.
"""

import sqlalchemy as sa
from alembic import op

from hub.db import schema

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = ("variants", "runs", "metrics", "predictions", "records", "engines", "pushes")


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    present = set(inspector.get_table_names())
    schema.metadata.create_all(bind, tables=[schema.metadata.tables[name] for name in TABLES], checkfirst=True)
    if "runs" in present:
        columns = {c["name"] for c in inspector.get_columns("runs")}
        if "suite_steps" not in columns:
            op.add_column("runs", sa.Column("suite_steps", sa.Text, nullable=False, server_default="[]"))
        if "runs_by_variant" not in {i["name"] for i in inspector.get_indexes("runs")}:
            op.create_index("runs_by_variant", "runs", ["variant_id"])


def downgrade() -> None:
    for name in reversed(TABLES):
        op.drop_table(name)
