"""Initial schema: identities, blobs, submissions and their history, results, rules, review, records.

Revision ID: 0001
Revises: 
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('blobs',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('path', sa.String(length=300), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('sha256', name=op.f('pk_blobs'))
    )
    op.create_table('records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('track', sa.String(length=60), nullable=False),
    sa.Column('folder', sa.String(length=300), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=True),
    sa.Column('author', sa.String(length=200), nullable=True),
    sa.Column('github_id', sa.String(length=100), nullable=True),
    sa.Column('date', sa.String(length=40), nullable=True),
    sa.Column('claimed_val_bpb', sa.Float(), nullable=True),
    sa.Column('claimed_val_loss', sa.Float(), nullable=True),
    sa.Column('bytes_total', sa.BigInteger(), nullable=True),
    sa.Column('verdict', sa.String(length=20), nullable=True),
    sa.Column('rank', sa.Integer(), nullable=True),
    sa.Column('data', sa.Text(), nullable=True),
    sa.Column('rule_results', sa.Text(), nullable=True),
    sa.Column('source_sha256', sa.String(length=64), nullable=False),
    sa.Column('ingested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_records')),
    sa.UniqueConstraint('track', 'folder', name=op.f('uq_records_track_folder'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('daily_quota', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('name', name=op.f('uq_users_name'))
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    op.create_index('ix_api_tokens_user_id', 'api_tokens', ['user_id'])

    op.create_table('audit_log',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=60), nullable=False),
    sa.Column('submission_id', sa.String(length=36), nullable=True),
    sa.Column('attempt', sa.Integer(), nullable=True),
    sa.Column('details', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_audit_log_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index('ix_audit_log_at', 'audit_log', ['at'])
    op.create_index('ix_audit_log_submission_id_at', 'audit_log', ['submission_id', 'at'])

    op.create_table('submissions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('submitter_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('queue', sa.String(length=20), nullable=True),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('stage_failures', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('worker', sa.String(length=200), nullable=True),
    sa.Column('artifact_sha256', sa.String(length=64), nullable=False),
    sa.Column('code_sha256', sa.String(length=64), nullable=False),
    sa.Column('config_json', sa.Text(), nullable=False),
    sa.Column('config_sha256', sa.String(length=64), nullable=False),
    sa.Column('dedupe_key', sa.String(length=64), nullable=False),
    sa.Column('submission_json', sa.Text(), nullable=True),
    sa.Column('track', sa.String(length=60), nullable=False),
    sa.Column('name', sa.String(length=300), nullable=True),
    sa.Column('author', sa.String(length=200), nullable=True),
    sa.Column('folder', sa.String(length=300), nullable=True),
    sa.Column('claimed_val_bpb', sa.Float(), nullable=True),
    sa.Column('claimed_val_loss', sa.Float(), nullable=True),
    sa.Column('artifact_bytes', sa.BigInteger(), nullable=False),
    sa.Column('code_bytes', sa.BigInteger(), nullable=False),
    sa.Column('counted_bytes', sa.BigInteger(), nullable=True),
    sa.Column('cap_bytes', sa.BigInteger(), nullable=False),
    sa.Column('measured_val_bpb', sa.Float(), nullable=True),
    sa.Column('measured_val_loss', sa.Float(), nullable=True),
    sa.Column('result_id', sa.Integer(), nullable=True),
    sa.Column('verdict', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('reason_kind', sa.String(length=60), nullable=True),
    sa.Column('chunks_done', sa.Integer(), nullable=False),
    sa.Column('chunks_total', sa.Integer(), nullable=True),
    sa.Column('eval_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('flagged', sa.Boolean(), nullable=False),
    sa.Column('disqualified', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['artifact_sha256'], ['blobs.sha256'], name=op.f('fk_submissions_artifact_sha256_blobs')),
    sa.ForeignKeyConstraint(['code_sha256'], ['blobs.sha256'], name=op.f('fk_submissions_code_sha256_blobs')),
    sa.ForeignKeyConstraint(['submitter_id'], ['users.id'], name=op.f('fk_submissions_submitter_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_submissions')),
    sa.UniqueConstraint('submitter_id', 'dedupe_key', name=op.f('uq_submissions_submitter_id_dedupe_key'))
    )
    op.create_index('ix_submissions_state', 'submissions', ['state'])
    op.create_index('ix_submissions_state_queue_queued_at', 'submissions', ['state', 'queue', 'queued_at'])
    op.create_index('ix_submissions_submitter_id_created_at', 'submissions', ['submitter_id', 'created_at'])

    op.create_table('attempts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.String(length=36), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('worker', sa.String(length=200), nullable=True),
    sa.Column('task_id', sa.String(length=100), nullable=True),
    sa.Column('device', sa.String(length=100), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], name=op.f('fk_attempts_submission_id_submissions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attempts')),
    sa.UniqueConstraint('submission_id', 'number', name=op.f('uq_attempts_submission_id_number'))
    )
    op.create_index('ix_attempts_submission_id', 'attempts', ['submission_id'])

    op.create_table('chunk_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.String(length=36), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('chunk_index', sa.Integer(), nullable=False),
    sa.Column('windows', sa.Integer(), nullable=False),
    sa.Column('tokens_scored', sa.BigInteger(), nullable=False),
    sa.Column('bytes_scored', sa.BigInteger(), nullable=False),
    sa.Column('score_seconds', sa.Float(), nullable=False),
    sa.Column('train_seconds', sa.Float(), nullable=False),
    sa.Column('running_loss', sa.Float(), nullable=False),
    sa.Column('running_bpb', sa.Float(), nullable=False),
    sa.Column('lr', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], name=op.f('fk_chunk_records_submission_id_submissions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chunk_records')),
    sa.UniqueConstraint('submission_id', 'attempt', 'chunk_index', name=op.f('uq_chunk_records_submission_id_attempt_chunk_index'))
    )
    op.create_index('ix_chunk_records_submission_id', 'chunk_records', ['submission_id'])

    op.create_table('flags',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.String(length=36), nullable=True),
    sa.Column('record_id', sa.Integer(), nullable=True),
    sa.Column('raised_by', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('public', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['raised_by'], ['users.id'], name=op.f('fk_flags_raised_by_users')),
    sa.ForeignKeyConstraint(['record_id'], ['records.id'], name=op.f('fk_flags_record_id_records'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['resolved_by'], ['users.id'], name=op.f('fk_flags_resolved_by_users')),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], name=op.f('fk_flags_submission_id_submissions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flags'))
    )
    op.create_index('ix_flags_record_id', 'flags', ['record_id'])
    op.create_index('ix_flags_submission_id', 'flags', ['submission_id'])

    op.create_table('results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.String(length=36), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('mode', sa.String(length=20), nullable=False),
    sa.Column('val_loss', sa.Float(), nullable=False),
    sa.Column('val_bpb', sa.Float(), nullable=False),
    sa.Column('tokens_scored', sa.BigInteger(), nullable=False),
    sa.Column('bytes_scored', sa.BigInteger(), nullable=False),
    sa.Column('total_targets', sa.BigInteger(), nullable=False),
    sa.Column('elapsed_s', sa.Float(), nullable=False),
    sa.Column('gpu_seconds', sa.Float(), nullable=False),
    sa.Column('device', sa.String(length=100), nullable=False),
    sa.Column('verifier_version', sa.String(length=40), nullable=False),
    sa.Column('torch_version', sa.String(length=40), nullable=True),
    sa.Column('config_sha256', sa.String(length=64), nullable=False),
    sa.Column('max_val_tokens', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], name=op.f('fk_results_submission_id_submissions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_results')),
    sa.UniqueConstraint('submission_id', 'attempt', name=op.f('uq_results_submission_id_attempt'))
    )
    op.create_index('ix_results_submission_id', 'results', ['submission_id'])

    op.create_table('review_actions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=30), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('payload', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], name=op.f('fk_review_actions_submission_id_submissions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_review_actions_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_actions'))
    )
    op.create_index('ix_review_actions_submission_id', 'review_actions', ['submission_id'])

    op.create_table('rule_results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.String(length=36), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('rule', sa.String(length=80), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('evidence', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('override_status', sa.String(length=20), nullable=True),
    sa.Column('override_reason', sa.Text(), nullable=True),
    sa.Column('override_by', sa.Integer(), nullable=True),
    sa.Column('override_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['override_by'], ['users.id'], name=op.f('fk_rule_results_override_by_users')),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], name=op.f('fk_rule_results_submission_id_submissions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rule_results')),
    sa.UniqueConstraint('submission_id', 'attempt', 'rule', name=op.f('uq_rule_results_submission_id_attempt_rule'))
    )
    op.create_index('ix_rule_results_submission_id', 'rule_results', ['submission_id'])

    op.create_table('state_transitions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.String(length=36), nullable=False),
    sa.Column('from_state', sa.String(length=20), nullable=True),
    sa.Column('to_state', sa.String(length=20), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], name=op.f('fk_state_transitions_submission_id_submissions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_state_transitions'))
    )
    op.create_index('ix_state_transitions_submission_id', 'state_transitions', ['submission_id'])

    op.create_table('submission_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.String(length=36), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['sha256'], ['blobs.sha256'], name=op.f('fk_submission_files_sha256_blobs')),
    sa.ForeignKeyConstraint(['submission_id'], ['submissions.id'], name=op.f('fk_submission_files_submission_id_submissions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_submission_files'))
    )
    op.create_index('ix_submission_files_submission_id', 'submission_files', ['submission_id'])



def downgrade() -> None:
    op.drop_index('ix_submission_files_submission_id', table_name='submission_files')

    op.drop_table('submission_files')
    op.drop_index('ix_state_transitions_submission_id', table_name='state_transitions')

    op.drop_table('state_transitions')
    op.drop_index('ix_rule_results_submission_id', table_name='rule_results')

    op.drop_table('rule_results')
    op.drop_index('ix_review_actions_submission_id', table_name='review_actions')

    op.drop_table('review_actions')
    op.drop_index('ix_results_submission_id', table_name='results')

    op.drop_table('results')
    op.drop_index('ix_flags_submission_id', table_name='flags')
    op.drop_index('ix_flags_record_id', table_name='flags')

    op.drop_table('flags')
    op.drop_index('ix_chunk_records_submission_id', table_name='chunk_records')

    op.drop_table('chunk_records')
    op.drop_index('ix_attempts_submission_id', table_name='attempts')

    op.drop_table('attempts')
    op.drop_index('ix_submissions_submitter_id_created_at', table_name='submissions')
    op.drop_index('ix_submissions_state_queue_queued_at', table_name='submissions')
    op.drop_index('ix_submissions_state', table_name='submissions')

    op.drop_table('submissions')
    op.drop_index('ix_audit_log_submission_id_at', table_name='audit_log')
    op.drop_index('ix_audit_log_at', table_name='audit_log')

    op.drop_table('audit_log')
    op.drop_index('ix_api_tokens_user_id', table_name='api_tokens')

    op.drop_table('api_tokens')
    op.drop_table('users')
    op.drop_table('records')
    op.drop_table('blobs')
