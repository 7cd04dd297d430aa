"""Foundation: sites, users and sessions, access journal, catalogue, orders, job outbox.

Revision ID: a1f790cf63c3
Revises: 
Create Date: 2026-11-25 08:04:19.396454
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '20261125_01'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('destinations',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False, start=1, increment=1), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('tier', sa.Integer(), nullable=False),
    sa.Column('min_units', sa.Integer(), nullable=True),
    sa.Column('max_units', sa.Integer(), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('store', 'branch', 'customer')", name=op.f('ck_destinations_kind_known')),
    sa.CheckConstraint('max_units IS NULL OR max_units >= coalesce(min_units, 0)', name=op.f('ck_destinations_max_above_min')),
    sa.CheckConstraint('min_units IS NULL OR min_units >= 0', name=op.f('ck_destinations_min_not_negative')),
    sa.CheckConstraint('tier >= 1', name=op.f('ck_destinations_tier_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_destinations')),
    sa.UniqueConstraint('code', name=op.f('uq_destinations_code'))
    )
    op.create_table('job_requests',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False, start=1, increment=1), nullable=False),
    sa.Column('function', sa.String(length=64), nullable=False),
    sa.Column('kwargs', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('relayed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('result', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_requests'))
    )
    op.create_index('ix_job_requests_unrelayed', 'job_requests', ['id'], unique=False, postgresql_where=sa.text('relayed_at IS NULL'))
    op.create_table('products',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False, start=1, increment=1), nullable=False),
    sa.Column('sku', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('unit', sa.String(length=16), nullable=False),
    sa.Column('pack_size', sa.Integer(), nullable=False),
    sa.Column('lot_tracked', sa.Boolean(), nullable=False),
    sa.Column('expiry_tracked', sa.Boolean(), nullable=False),
    sa.Column('round_up_packs', sa.Boolean(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('NOT expiry_tracked OR lot_tracked', name=op.f('ck_products_expiry_implies_lot')),
    sa.CheckConstraint('pack_size >= 1', name=op.f('ck_products_pack_size_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_products')),
    sa.UniqueConstraint('sku', name=op.f('uq_products_sku'))
    )
    op.create_table('sites',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False, start=1, increment=1), nullable=False),
    sa.Column('code', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sites')),
    sa.UniqueConstraint('code', name=op.f('uq_sites_code'))
    )
    op.create_table('users',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('full_name', sa.String(length=120), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('locale', sa.String(length=8), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('failed_logins', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("locale IS NULL OR locale IN ('fr', 'en')", name=op.f('ck_users_locale_known')),
    sa.CheckConstraint("role IN ('operator', 'supervisor', 'admin')", name=op.f('ck_users_role_known')),
    sa.CheckConstraint('failed_logins >= 0', name=op.f('ck_users_failed_logins_not_negative')),
    sa.CheckConstraint('username = lower(username)', name=op.f('ck_users_username_lowercase')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    op.create_table('worker_heartbeats',
    sa.Column('worker_id', sa.String(length=96), nullable=False),
    sa.Column('hostname', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('queue', sa.String(length=64), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('beat_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('worker_id', name=op.f('pk_worker_heartbeats'))
    )
    op.create_table('access_journal',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False, start=1, increment=1), nullable=False),
    sa.Column('event', sa.String(length=48), nullable=False),
    sa.Column('actor_id', sa.Uuid(), nullable=True),
    sa.Column('actor_name', sa.String(length=64), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('detail', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_access_journal_actor_id_users'), ),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_access_journal'))
    )
    op.create_index('ix_access_journal_event_ip_time', 'access_journal', ['event', 'ip', 'created_at'], unique=False)
    op.create_index('ix_access_journal_time', 'access_journal', ['created_at'], unique=False)
    op.create_table('auth_sessions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('user_agent', sa.String(length=255), nullable=True),
    sa.Column('sa_orm_sentinel', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('browser', 'api')", name=op.f('ck_auth_sessions_kind_known')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_auth_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_auth_sessions'))
    )
    op.create_index('ix_auth_sessions_user_open', 'auth_sessions', ['user_id'], unique=False, postgresql_where=sa.text('revoked_at IS NULL'))
    op.create_table('dispatch_orders',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False, start=1, increment=1), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('site_id', sa.BigInteger(), nullable=False),
    sa.Column('destination_id', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("source IN ('screen', 'import', 'api', 'demo')", name=op.f('ck_dispatch_orders_source_known')),
    sa.CheckConstraint("state IN ('draft', 'released', 'allocated', 'picking', 'picked', 'dispatched', 'cancelled')", name=op.f('ck_dispatch_orders_state_known')),
    sa.CheckConstraint('priority >= 1', name=op.f('ck_dispatch_orders_priority_positive')),
    sa.CheckConstraint('units >= 0', name=op.f('ck_dispatch_orders_units_not_negative')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_dispatch_orders_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['destination_id'], ['destinations.id'], name=op.f('fk_dispatch_orders_destination_id_destinations'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_dispatch_orders_site_id_sites'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dispatch_orders')),
    sa.UniqueConstraint('number', name=op.f('uq_dispatch_orders_number'))
    )
    op.create_index('ix_dispatch_orders_site_state', 'dispatch_orders', ['site_id', 'state'], unique=False)
    op.create_table('job_pings',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False, start=1, increment=1), nullable=False),
    sa.Column('request_id', sa.BigInteger(), nullable=False),
    sa.Column('worker_id', sa.String(length=96), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['request_id'], ['job_requests.id'], name=op.f('fk_job_pings_request_id_job_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_pings'))
    )
    op.create_index(op.f('ix_job_pings_request_id'), 'job_pings', ['request_id'], unique=False)
    op.create_table('locations',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False, start=1, increment=1), nullable=False),
    sa.Column('site_id', sa.BigInteger(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('barcode', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('zone', sa.String(length=16), nullable=False),
    sa.Column('pick_seq', sa.Integer(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('storage', 'receiving', 'dispatch', 'quarantine')", name=op.f('ck_locations_kind_known')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_locations_site_id_sites'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_locations')),
    sa.UniqueConstraint('barcode', name=op.f('uq_locations_barcode')),
    sa.UniqueConstraint('site_id', 'code', name=op.f('uq_locations_site_id'))
    )
    op.create_index('ix_locations_site_path', 'locations', ['site_id', 'pick_seq'], unique=False)
    op.create_table('product_barcodes',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False, start=1, increment=1), nullable=False),
    sa.Column('product_id', sa.BigInteger(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('gtin', 'internal')", name=op.f('ck_product_barcodes_kind_known')),
    sa.CheckConstraint('units >= 1', name=op.f('ck_product_barcodes_units_positive')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_product_barcodes_product_id_products'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_product_barcodes')),
    sa.UniqueConstraint('code', name=op.f('uq_product_barcodes_code'))
    )
    op.create_index(op.f('ix_product_barcodes_product_id'), 'product_barcodes', ['product_id'], unique=False)
    op.create_table('user_sites',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('site_id', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_user_sites_site_id_sites'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_user_sites_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'site_id', name=op.f('pk_user_sites'))
    )
    op.create_table('dispatch_order_lines',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False, start=1, increment=1), nullable=False),
    sa.Column('order_id', sa.BigInteger(), nullable=False),
    sa.Column('line_no', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.BigInteger(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_dispatch_order_lines_quantity_positive')),
    sa.ForeignKeyConstraint(['order_id'], ['dispatch_orders.id'], name=op.f('fk_dispatch_order_lines_order_id_dispatch_orders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_dispatch_order_lines_product_id_products'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dispatch_order_lines')),
    sa.UniqueConstraint('order_id', 'line_no', name=op.f('uq_dispatch_order_lines_order_id'))
    )
    op.create_index(op.f('ix_dispatch_order_lines_product_id'), 'dispatch_order_lines', ['product_id'], unique=False)

    # The access journal is append-only: the database itself refuses to rewrite history.
    op.execute("""
        CREATE FUNCTION refuse_journal_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'access_journal is append-only (% refused)', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$
    """)
    op.execute("""
        CREATE TRIGGER access_journal_append_only
        BEFORE UPDATE OR DELETE OR TRUNCATE ON access_journal
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_journal_rewrite()
    """)


def downgrade() -> None:
    op.execute("DROP TRIGGER access_journal_append_only ON access_journal")
    op.execute("DROP FUNCTION refuse_journal_rewrite()")
    op.drop_index(op.f('ix_dispatch_order_lines_product_id'), table_name='dispatch_order_lines')
    op.drop_table('dispatch_order_lines')
    op.drop_table('user_sites')
    op.drop_index(op.f('ix_product_barcodes_product_id'), table_name='product_barcodes')
    op.drop_table('product_barcodes')
    op.drop_index('ix_locations_site_path', table_name='locations')
    op.drop_table('locations')
    op.drop_index(op.f('ix_job_pings_request_id'), table_name='job_pings')
    op.drop_table('job_pings')
    op.drop_index('ix_dispatch_orders_site_state', table_name='dispatch_orders')
    op.drop_table('dispatch_orders')
    op.drop_index('ix_auth_sessions_user_open', table_name='auth_sessions', postgresql_where=sa.text('revoked_at IS NULL'))
    op.drop_table('auth_sessions')
    op.drop_index('ix_access_journal_time', table_name='access_journal')
    op.drop_index('ix_access_journal_event_ip_time', table_name='access_journal')
    op.drop_table('access_journal')
    op.drop_table('worker_heartbeats')
    op.drop_table('users')
    op.drop_table('sites')
    op.drop_table('products')
    op.drop_index('ix_job_requests_unrelayed', table_name='job_requests', postgresql_where=sa.text('relayed_at IS NULL'))
    op.drop_table('job_requests')
    op.drop_table('destinations')
