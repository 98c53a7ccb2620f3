"""The job queue's table: ``jobs`` (hub/queue/schema.py).

Revision ID: 0002
Revises: 0001

A database at 0001 gets the table, empty; a store that made it before this revision (while the
queue created its own table) keeps it and its rows.
"""

from alembic import op

from hub.queue.schema import jobs

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    jobs.create(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    op.drop_table("jobs")
