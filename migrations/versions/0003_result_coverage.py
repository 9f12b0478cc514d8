"""Result provenance: which validation data a result was computed on (sha256, token count, the
canonical fingerprint configured, bytes of the canonical set, coverage full | demo | non-canonical).

Revision ID: 0003
Revises: 0002
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('results') as batch:
        batch.add_column(sa.Column('val_sha256', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('val_tokens', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('canonical_val_sha256', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('canonical_bytes', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('coverage', sa.String(length=20), nullable=True))
    # Results stored before this revision carry no fingerprint: they cannot be shown as verified.
    op.execute("UPDATE results SET coverage = CASE WHEN max_val_tokens IS NOT NULL THEN 'demo' "
               "ELSE 'non-canonical' END")
    op.execute("UPDATE submissions SET verdict = 'unverified' WHERE verdict = 'pass' AND result_id IS NOT NULL")
    op.execute("UPDATE submissions SET state = 'scored' WHERE state = 'published' AND verdict = 'unverified'")


def downgrade() -> None:
    with op.batch_alter_table('results') as batch:
        batch.drop_column('coverage')
        batch.drop_column('canonical_bytes')
        batch.drop_column('canonical_val_sha256')
        batch.drop_column('val_tokens')
        batch.drop_column('val_sha256')
