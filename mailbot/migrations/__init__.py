"""The database schema's history under Alembic: every change a revision, applied by `mailbot db upgrade` and at
every start (mailbot/store.py), SQLite through Alembic's batch mode."""
