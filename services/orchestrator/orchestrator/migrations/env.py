from alembic import context

from certrotate_shared.migrations import run_env

run_env(context)
