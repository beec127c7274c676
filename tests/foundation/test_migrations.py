"""The migrations build exactly the schema the models describe, on both databases."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

import mailbot.models  # noqa: F401


def test_upgrading_to_head_matches_the_models(fresh_db):
    with fresh_db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == [], f"models and migrations differ; run `mailbot db revision -m ...`:\n{diff}"


def test_the_migrations_have_one_head(fresh_db):
    heads = ScriptDirectory.from_config(fresh_db.alembic_config()).get_heads()
    assert len(heads) == 1, f"several heads {heads}: merge them (alembic merge heads)"
    assert fresh_db.current_revisions() == set(heads)
