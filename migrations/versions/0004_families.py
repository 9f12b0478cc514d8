"""Model families: each submission's family (name and one-line title, as the checks stage detected
it), and on each result the family that scored it and its family-specific figures (JSON; e.g.
CaseOps: the submitted byte sidecar's total next to golfcheck's canonical bytes).

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('submissions') as batch:
        batch.add_column(sa.Column('family', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('family_title', sa.String(length=200), nullable=True))
    with op.batch_alter_table('results') as batch:
        batch.add_column(sa.Column('family', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('extra', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('results') as batch:
        batch.drop_column('extra')
        batch.drop_column('family')
    with op.batch_alter_table('submissions') as batch:
        batch.drop_column('family_title')
        batch.drop_column('family')
