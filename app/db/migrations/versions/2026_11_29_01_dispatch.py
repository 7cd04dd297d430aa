"""Dispatch: destinations' sensitive fields, order progress, dispatch runs, pick lists and tasks, shipments.

Revision ID: 20261129_01
Revises: 20261125_04
Create Date: 2026-11-29 08:30:00

The encrypted columns are plain VARCHAR here: values are encrypted by the application (app/db/crypto.py),
and no key ever lands in a migration.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
revision: str = '20261129_01'
down_revision: str | None = '20261125_04'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('dispatch_runs',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False, start=1, increment=1), nullable=False),
    sa.Column('site_id', sa.BigInteger(), nullable=False),
    sa.Column('policy', sa.String(length=24), nullable=False),
    sa.Column('rounding', sa.String(length=24), nullable=False),
    sa.Column('spill', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('inputs_hash', sa.String(length=64), nullable=True),
    sa.Column('phase', sa.String(length=16), nullable=False),
    sa.Column('progress_done', sa.Integer(), nullable=False),
    sa.Column('progress_total', sa.Integer(), nullable=False),
    sa.Column('summary', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('error', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('queued', 'running', 'committed', 'stale', 'failed')", name=op.f('ck_dispatch_runs_status_known')),
    sa.CheckConstraint('progress_done >= 0 AND progress_done <= progress_total', name=op.f('ck_dispatch_runs_progress_bounded')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_dispatch_runs_created_by_users')),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_dispatch_runs_site_id_sites'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dispatch_runs'))
    )
    op.create_index('ix_dispatch_runs_site_time', 'dispatch_runs', ['site_id', 'created_at'], unique=False)
    op.create_table('shipments',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False, start=1, increment=1), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('site_id', sa.BigInteger(), nullable=False),
    sa.Column('destination_id', sa.BigInteger(), nullable=False),
    sa.Column('parcels', sa.Integer(), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('parcels >= 1', name=op.f('ck_shipments_parcels_positive')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_shipments_created_by_users')),
    sa.ForeignKeyConstraint(['destination_id'], ['destinations.id'], name=op.f('fk_shipments_destination_id_destinations'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_shipments_site_id_sites'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shipments')),
    sa.UniqueConstraint('number', name=op.f('uq_shipments_number'))
    )
    op.create_index('ix_shipments_site_time', 'shipments', ['site_id', 'created_at'], unique=False)
    op.create_table('dispatch_run_lines',
    sa.Column('run_id', sa.BigInteger(), nullable=False),
    sa.Column('product_id', sa.BigInteger(), nullable=False),
    sa.Column('destination_id', sa.BigInteger(), nullable=False),
    sa.Column('tier', sa.Integer(), nullable=False),
    sa.Column('need_units', sa.Integer(), nullable=False),
    sa.Column('min_units', sa.Integer(), nullable=True),
    sa.Column('max_units', sa.Integer(), nullable=True),
    sa.Column('pack_size', sa.Integer(), nullable=False),
    sa.Column('quota_numerator', sa.BigInteger(), nullable=False),
    sa.Column('quota_denominator', sa.BigInteger(), nullable=False),
    sa.Column('packs', sa.Integer(), nullable=False),
    sa.Column('eaches', sa.Integer(), nullable=False),
    sa.Column('units', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=24), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['dispatch_runs.id'], name=op.f('fk_dispatch_run_lines_run_id_dispatch_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('run_id', 'product_id', 'destination_id', name=op.f('pk_dispatch_run_lines'))
    )
    op.create_table('pick_lists',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False, start=1, increment=1), nullable=False),
    sa.Column('number', sa.String(length=32), nullable=False),
    sa.Column('site_id', sa.BigInteger(), nullable=False),
    sa.Column('run_id', sa.BigInteger(), nullable=False),
    sa.Column('zone', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('taken_by', sa.Uuid(), nullable=True),
    sa.Column('taken_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(status = 'open') = (taken_by IS NULL)", name=op.f('ck_pick_lists_taken_iff_not_open')),
    sa.CheckConstraint("status IN ('open', 'taken', 'done')", name=op.f('ck_pick_lists_status_known')),
    sa.ForeignKeyConstraint(['run_id'], ['dispatch_runs.id'], name=op.f('fk_pick_lists_run_id_dispatch_runs'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name=op.f('fk_pick_lists_site_id_sites'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['taken_by'], ['users.id'], name=op.f('fk_pick_lists_taken_by_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pick_lists')),
    sa.UniqueConstraint('number', name=op.f('uq_pick_lists_number'))
    )
    op.create_index(op.f('ix_pick_lists_run_id'), 'pick_lists', ['run_id'], unique=False)
    op.create_index('ix_pick_lists_site_status', 'pick_lists', ['site_id', 'status'], unique=False)
    op.create_table('pick_tasks',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('run_id', sa.BigInteger(), nullable=False),
    sa.Column('pick_list_id', sa.BigInteger(), nullable=False),
    sa.Column('order_line_id', sa.BigInteger(), nullable=False),
    sa.Column('product_id', sa.BigInteger(), nullable=False),
    sa.Column('location_id', sa.BigInteger(), nullable=False),
    sa.Column('lot_id', sa.BigInteger(), nullable=True),
    sa.Column('pick_seq', sa.Integer(), nullable=False),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('picked', sa.Integer(), nullable=False),
    sa.Column('short', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('done_by', sa.Uuid(), nullable=True),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(status = 'open' AND picked = 0 AND short = 0) OR (status IN ('picked', 'short') AND picked + short = quantity) OR (status = 'released' AND picked = 0 AND short = 0)", name=op.f('ck_pick_tasks_progress_matches_status')),
    sa.CheckConstraint("status IN ('open', 'picked', 'short', 'released')", name=op.f('ck_pick_tasks_status_known')),
    sa.CheckConstraint('picked >= 0 AND short >= 0', name=op.f('ck_pick_tasks_progress_not_negative')),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_pick_tasks_quantity_positive')),
    sa.ForeignKeyConstraint(['done_by'], ['users.id'], name=op.f('fk_pick_tasks_done_by_users')),
    sa.ForeignKeyConstraint(['order_line_id'], ['dispatch_order_lines.id'], name=op.f('fk_pick_tasks_order_line_id_dispatch_order_lines'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['pick_list_id'], ['pick_lists.id'], name=op.f('fk_pick_tasks_pick_list_id_pick_lists'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pick_tasks'))
    )
    op.create_index('ix_pick_tasks_list_path', 'pick_tasks', ['pick_list_id', 'pick_seq'], unique=False)
    op.create_index('ix_pick_tasks_order_line', 'pick_tasks', ['order_line_id'], unique=False)
    op.create_table('shipment_lines',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('shipment_id', sa.BigInteger(), nullable=False),
    sa.Column('order_line_id', sa.BigInteger(), nullable=False),
    sa.Column('product_id', sa.BigInteger(), nullable=False),
    sa.Column('lot_id', sa.BigInteger(), nullable=True),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_shipment_lines_quantity_positive')),
    sa.ForeignKeyConstraint(['lot_id'], ['lots.id'], name=op.f('fk_shipment_lines_lot_id_lots'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['order_line_id'], ['dispatch_order_lines.id'], name=op.f('fk_shipment_lines_order_line_id_dispatch_order_lines'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_shipment_lines_product_id_products'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'], name=op.f('fk_shipment_lines_shipment_id_shipments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shipment_lines'))
    )
    op.create_index(op.f('ix_shipment_lines_shipment_id'), 'shipment_lines', ['shipment_id'], unique=False)
    op.add_column('destinations', sa.Column('quota_percent', sa.Numeric(precision=5, scale=2), nullable=True))
    op.add_column('destinations', sa.Column('address', sa.String(), nullable=True))
    op.add_column('destinations', sa.Column('contact', sa.String(), nullable=True))
    op.add_column('dispatch_order_lines', sa.Column('allocated', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('dispatch_order_lines', sa.Column('picked', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('dispatch_order_lines', sa.Column('shipped', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('dispatch_order_lines', sa.Column('short_picked', sa.Integer(), nullable=False, server_default='0'))
    op.add_column('dispatch_orders', sa.Column('backorder_of', sa.BigInteger(), nullable=True))
    op.add_column('dispatch_orders', sa.Column('released_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('dispatch_orders', sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint(op.f('ck_destinations_quota_percent_range'), 'destinations', 'quota_percent IS NULL OR quota_percent BETWEEN 0 AND 100')
    op.create_check_constraint(op.f('ck_dispatch_order_lines_progress_not_negative'), 'dispatch_order_lines', 'allocated >= 0 AND picked >= 0 AND shipped >= 0 AND short_picked >= 0')
    op.create_foreign_key(op.f('fk_dispatch_orders_backorder_of_dispatch_orders'), 'dispatch_orders', 'dispatch_orders', ['backorder_of'], ['id'], ondelete='RESTRICT')
    op.add_column('products', sa.Column('allow_eaches', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column('sites', sa.Column('dispatch_policy', sa.String(length=24), nullable=False, server_default='proportional'))
    op.add_column('sites', sa.Column('dispatch_rounding', sa.String(length=24), nullable=False, server_default='largest_remainder'))
    op.add_column('sites', sa.Column('dispatch_spill', sa.Boolean(), nullable=False, server_default=sa.false()))
    # Order files go through the import machinery: one more kind of import batch.
    op.drop_constraint(op.f('ck_import_batches_kind_known'), 'import_batches', type_='check')
    op.create_check_constraint(op.f('ck_import_batches_kind_known'), 'import_batches', "kind IN ('products', 'locations', 'stock', 'orders')")


def downgrade() -> None:
    # Order imports cannot outlive the orders' schema: their batches go before the older check returns.
    op.execute("DELETE FROM import_batches WHERE kind = 'orders'")
    op.drop_constraint(op.f('ck_import_batches_kind_known'), 'import_batches', type_='check')
    op.create_check_constraint(op.f('ck_import_batches_kind_known'), 'import_batches', "kind IN ('products', 'locations', 'stock')")
    op.drop_column('sites', 'dispatch_spill')
    op.drop_column('sites', 'dispatch_rounding')
    op.drop_column('sites', 'dispatch_policy')
    op.drop_column('products', 'allow_eaches')
    op.drop_constraint(op.f('fk_dispatch_orders_backorder_of_dispatch_orders'), 'dispatch_orders', type_='foreignkey')
    op.drop_column('dispatch_orders', 'dispatched_at')
    op.drop_column('dispatch_orders', 'released_at')
    op.drop_column('dispatch_orders', 'backorder_of')
    op.drop_column('dispatch_order_lines', 'short_picked')
    op.drop_column('dispatch_order_lines', 'shipped')
    op.drop_column('dispatch_order_lines', 'picked')
    op.drop_column('dispatch_order_lines', 'allocated')
    op.drop_column('destinations', 'contact')
    op.drop_column('destinations', 'address')
    op.drop_column('destinations', 'quota_percent')
    op.drop_index(op.f('ix_shipment_lines_shipment_id'), table_name='shipment_lines')
    op.drop_table('shipment_lines')
    op.drop_index('ix_pick_tasks_order_line', table_name='pick_tasks')
    op.drop_index('ix_pick_tasks_list_path', table_name='pick_tasks')
    op.drop_table('pick_tasks')
    op.drop_index('ix_pick_lists_site_status', table_name='pick_lists')
    op.drop_index(op.f('ix_pick_lists_run_id'), table_name='pick_lists')
    op.drop_table('pick_lists')
    op.drop_table('dispatch_run_lines')
    op.drop_index('ix_shipments_site_time', table_name='shipments')
    op.drop_table('shipments')
    op.drop_index('ix_dispatch_runs_site_time', table_name='dispatch_runs')
    op.drop_table('dispatch_runs')
