"""Review claims: which reviewer works on a queue item (claimed for themselves or assigned by
another reviewer); one row per submission at most, deleted on release.

Revision ID: 0005
Revises: 0004
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('review_claims',
    sa.Column('submission_id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('assigned_by', sa.Integer(), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'],
                            name=op.f('fk_review_claims_submission_id_submissions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_review_claims_user_id_users'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['assigned_by'], ['users.id'], name=op.f('fk_review_claims_assigned_by_users'),
                            ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('submission_id', name=op.f('pk_review_claims'))
    )
    op.create_index('ix_review_claims_user_id', 'review_claims', ['user_id'])


def downgrade() -> None:
    op.drop_index('ix_review_claims_user_id', table_name='review_claims')
    op.drop_table('review_claims')
