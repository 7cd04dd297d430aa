"""Stock ledger: lots, balances, the append-only movement ledger, idempotency keys.

Revision ID: 20261125_02
Revises: 20261125_01
Create Date: 2026-11-25 08:27:21.126379
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '20261125_02'
down_revision: str | None = '20261125_01'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('idempotency_keys',
    sa.Column('scope', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('response', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('scope', 'key', name=op.f('pk_idempotency_keys'))
    )
    op.create_index('ix_idempotency_keys_created', 'idempotency_keys', ['created_at'], unique=False)
    op.create_table('lots',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False, start=1, increment=1), nullable=False),
    sa.Column('product_id', sa.BigInteger(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('expiry', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_lots_product_id_products'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lots')),
    sa.UniqueConstraint('product_id', 'code', name=op.f('uq_lots_product_id'))
    )
    op.create_table('stock_balances',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('product_id', sa.BigInteger(), nullable=False),
    sa.Column('location_id', sa.BigInteger(), nullable=False),
    sa.Column('lot_id', sa.BigInteger(), nullable=True),
    sa.Column('on_hand', sa.Integer(), nullable=False),
    sa.Column('reserved', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('on_hand >= 0', name=op.f('ck_stock_balances_on_hand_not_negative')),
    sa.CheckConstraint('reserved >= 0 AND reserved <= on_hand', name=op.f('ck_stock_balances_reserved_within_on_hand')),
    sa.ForeignKeyConstraint(['location_id'], ['locations.id'], name=op.f('fk_stock_balances_location_id_locations'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['lot_id'], ['lots.id'], name=op.f('fk_stock_balances_lot_id_lots'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_stock_balances_product_id_products'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stock_balances'))
    )
    op.create_index('ix_stock_balances_location', 'stock_balances', ['location_id'], unique=False)
    op.create_index('uq_stock_balances_key', 'stock_balances', ['product_id', 'location_id', sa.literal_column('coalesce(lot_id, 0)')], unique=True)
    op.create_table('stock_movements',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('product_id', sa.BigInteger(), nullable=False),
    sa.Column('lot_id', sa.BigInteger(), nullable=True),
    sa.Column('from_location_id', sa.BigInteger(), nullable=True),
    sa.Column('to_location_id', sa.BigInteger(), nullable=True),
    sa.Column('quantity', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('document', sa.String(length=64), nullable=True),
    sa.Column('actor_id', sa.Uuid(), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('receipt', 'putaway', 'transfer', 'adjustment', 'count_correction', 'return', 'pick', 'dispatch')", name=op.f('ck_stock_movements_kind_known')),
    sa.CheckConstraint('from_location_id IS DISTINCT FROM to_location_id', name=op.f('ck_stock_movements_moves_somewhere')),
    sa.CheckConstraint('from_location_id IS NOT NULL OR to_location_id IS NOT NULL', name=op.f('ck_stock_movements_has_a_side')),
    sa.CheckConstraint('quantity > 0', name=op.f('ck_stock_movements_quantity_positive')),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_stock_movements_actor_id_users')),
    sa.ForeignKeyConstraint(['from_location_id'], ['locations.id'], name=op.f('fk_stock_movements_from_location_id_locations'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['lot_id'], ['lots.id'], name=op.f('fk_stock_movements_lot_id_lots'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_stock_movements_product_id_products'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['to_location_id'], ['locations.id'], name=op.f('fk_stock_movements_to_location_id_locations'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stock_movements'))
    )
    op.create_index('ix_stock_movements_from_time', 'stock_movements', ['from_location_id', 'occurred_at'], unique=False)
    op.create_index('ix_stock_movements_product_time', 'stock_movements', ['product_id', 'occurred_at'], unique=False)
    op.create_index('ix_stock_movements_to_time', 'stock_movements', ['to_location_id', 'occurred_at'], unique=False)

    # The ledger is append-only: a mistake is corrected by a new movement, never by rewriting one.
    op.execute("""
        CREATE FUNCTION refuse_ledger_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$
    """)
    op.execute("""
        CREATE TRIGGER stock_movements_append_only
        BEFORE UPDATE OR DELETE OR TRUNCATE ON stock_movements
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_ledger_rewrite()
    """)


def downgrade() -> None:
    op.execute("DROP TRIGGER stock_movements_append_only ON stock_movements")
    op.execute("DROP FUNCTION refuse_ledger_rewrite()")
    op.drop_index('ix_stock_movements_to_time', table_name='stock_movements')
    op.drop_index('ix_stock_movements_product_time', table_name='stock_movements')
    op.drop_index('ix_stock_movements_from_time', table_name='stock_movements')
    op.drop_table('stock_movements')
    op.drop_index('uq_stock_balances_key', table_name='stock_balances')
    op.drop_index('ix_stock_balances_location', table_name='stock_balances')
    op.drop_table('stock_balances')
    op.drop_table('lots')
    op.drop_index('ix_idempotency_keys_created', table_name='idempotency_keys')
    op.drop_table('idempotency_keys')
