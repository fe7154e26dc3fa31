"""sagas.change_id: rotations looked up by their ITSM change record

Revision ID: o0005
Revises: o0004
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "o0005"
down_revision = "o0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sagas", sa.Column("change_id", sa.String(200)))
    op.create_index("ix_sagas_change_id", "sagas", ["change_id"])
    bind = op.get_bind()
    sagas = sa.table("sagas", sa.column("saga_id"), sa.column("change_id"))
    for row in bind.execute(sa.text("SELECT saga_id, state FROM sagas")).all():
        state = row.state if isinstance(row.state, dict) else json.loads(row.state)
        if state.get("change_id"):
            bind.execute(
                sagas.update()
                .where(sagas.c.saga_id == row.saga_id)
                .values(change_id=state["change_id"])
            )


def downgrade() -> None:
    op.drop_index("ix_sagas_change_id", "sagas")
    with op.batch_alter_table("sagas") as batch:
        batch.drop_column("change_id")
