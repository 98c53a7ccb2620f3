"""The results database: SQLite (the default, the store's ``results.db``) or PostgreSQL, through
SQLAlchemy Core, with the schema migrated by Alembic.

- :mod:`hub.db.schema`: the tables, written once (SQLAlchemy Core ``Table`` objects on one
  ``MetaData``); every query in :mod:`hub.store` is built from them, so both backends run the
  same queries.
- :mod:`hub.db.engine`: which database (``--db``, ``db:`` in an app config, ``EVALHUB_DB``, else
  ``sqlite:///<store>/results.db``), one engine per URL, and driver faults as one line.
- :mod:`hub.db.database`: a write (one transaction, after upgrading the schema) and a read
  (never writes).
- :mod:`hub.db.migrate` and ``migrations/``: Alembic, run programmatically (no alembic.ini);
  the migration scripts ship as package data.

Adding a schema revision (the next is ``0002``):

1. Change or add the tables in :mod:`hub.db.schema`.
2. Write ``hub/db/migrations/versions/0002_<what>.py`` with ``revision = "0002"`` and
   ``down_revision = "0001"``, its ``upgrade()`` made of ``alembic.op`` calls
   (``op.create_table``, ``op.add_column``, ...). Alembic can write the skeleton::

       from alembic import command
       from hub.db.migrate import alembic_config
       command.revision(alembic_config(), "jobs table", rev_id="0002")

3. A revision that changes one of 0001's tables must first copy that table's current
   definition into ``0001_results.py`` (which builds its tables from ``hub.db.schema``), so a new
   database still climbs every step.
4. ``tests/test_store_db.py`` checks that the migrations build exactly :mod:`hub.db.schema` on
   SQLite and PostgreSQL. An evalhub that meets a revision it does not know refuses the
   database (it was written by a newer evalhub) and never downgrades it.
"""

import logging

if logging.getLogger("alembic").level == logging.NOTSET:   # its INFO lines (plugins, "Running upgrade ...")
    logging.getLogger("alembic").setLevel(logging.WARNING)  # are no news to a CLI user; a level someone set stays

from hub.db.database import Database  # noqa: E402  (after the level: importing alembic logs)
from hub.db.engine import resolve_url  # noqa: E402

__all__ = ["Database", "resolve_url"]
