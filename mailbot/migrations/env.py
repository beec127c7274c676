"""Alembic environment: migrations run against the URL the Database was made
with (``mailbot db upgrade`` or ``Database.upgrade()``)."""

from alembic import context
from sqlalchemy import create_engine
from sqlmodel import SQLModel

import mailbot.models  # noqa: F401  (registers every table)

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    database = config.attributes.get("database")
    engine = database.engine if database is not None else create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
