"""Fixtures every test module may use: the real PostgreSQL server (`postgres`) and a fresh state
database on SQLite and on PostgreSQL (`database_url`)."""

pytest_plugins = ("tests.postgres",)
