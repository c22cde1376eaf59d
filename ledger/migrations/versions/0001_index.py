"""Event index: the raw event log, its blocks, the checkpoint and the projections.

Revision ID: 0001_index
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from ledger.index.models import ChainUint

revision: str = "0001_index"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "blocks",
        sa.Column("number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.String(length=66), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_blocks")),
        sa.UniqueConstraint("hash", name=op.f("uq_blocks_hash")),
    )
    op.create_table(
        "credit_grants",
        sa.Column("grantor", sa.String(length=42), nullable=False),
        sa.Column("core_firm", sa.String(length=42), nullable=False),
        sa.Column("amount", ChainUint(), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("grantor", "core_firm", name=op.f("pk_credit_grants")),
    )
    op.create_index("ix_credit_grants_core_firm", "credit_grants", ["core_firm"], unique=False)
    op.create_table(
        "credit_lines",
        sa.Column("core_firm", sa.String(length=42), nullable=False),
        sa.Column("credit_limit", ChainUint(), nullable=False),
        sa.Column("used", ChainUint(), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("core_firm", name=op.f("pk_credit_lines")),
    )
    op.create_table(
        "deposit_transfers",
        sa.Column("block_number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("log_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=True),
        sa.Column("recipient", sa.String(length=42), nullable=True),
        sa.Column("amount", ChainUint(), nullable=False),
        sa.Column("bank_reference", sa.String(length=66), nullable=True),
        sa.Column("agent", sa.String(length=42), nullable=True),
        sa.PrimaryKeyConstraint("block_number", "log_index", name=op.f("pk_deposit_transfers")),
    )
    op.create_index("ix_deposit_transfers_amount", "deposit_transfers", ["amount"], unique=False)
    op.create_index("ix_deposit_transfers_block_timestamp", "deposit_transfers", ["block_timestamp"], unique=False)
    op.create_index(
        "ix_deposit_transfers_recipient_block", "deposit_transfers", ["recipient", "block_number"], unique=False
    )
    op.create_index("ix_deposit_transfers_sender_block", "deposit_transfers", ["sender", "block_number"], unique=False)
    op.create_table(
        "events",
        sa.Column("block_number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("log_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("block_hash", sa.String(length=66), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.Column("contract", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("args", JSON_DOCUMENT, nullable=False),
        sa.PrimaryKeyConstraint("block_number", "log_index", name=op.f("pk_events")),
        sa.UniqueConstraint("block_hash", "log_index", name="uq_events_block_hash_log_index"),
    )
    op.create_index("ix_events_contract_name_block", "events", ["contract", "name", "block_number"], unique=False)
    op.create_index("ix_events_tx_hash", "events", ["tx_hash"], unique=False)
    op.create_table(
        "index_checkpoint",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("contracts", JSON_DOCUMENT, nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("block_hash", sa.String(length=66), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_index_checkpoint")),
    )
    op.create_table(
        "invoices",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("key_hash", sa.String(length=66), nullable=False),
        sa.Column("seller", sa.String(length=42), nullable=False),
        sa.Column("buyer", sa.String(length=42), nullable=False),
        sa.Column("amount", ChainUint(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("due_date", ChainUint(), nullable=False),
        sa.Column("document_hash", sa.String(length=66), nullable=False),
        sa.Column("state", sa.SmallInteger(), nullable=False),
        sa.Column("registered_at", sa.BigInteger(), nullable=False),
        sa.Column("confirmed_at", sa.BigInteger(), nullable=True),
        sa.Column("first_piece_id", sa.BigInteger(), nullable=True),
        sa.Column("rejection_reason", sa.String(length=66), nullable=True),
        sa.Column("repaid", ChainUint(), nullable=False),
        sa.Column("redeemed", ChainUint(), nullable=False),
        sa.Column("defaulted_by", sa.String(length=42), nullable=True),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_invoices_key_hash")),
    )
    op.create_index("ix_invoices_buyer_id", "invoices", ["buyer", "id"], unique=False)
    op.create_index("ix_invoices_due_date", "invoices", ["due_date"], unique=False)
    op.create_index("ix_invoices_seller_id", "invoices", ["seller", "id"], unique=False)
    op.create_index("ix_invoices_state_id", "invoices", ["state", "id"], unique=False)
    op.create_table(
        "ledger_parameters",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("value", ChainUint(), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_ledger_parameters")),
    )
    op.create_table(
        "participant_roles",
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("role", sa.String(length=66), nullable=False),
        sa.Column("granted_by", sa.String(length=42), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account", "role", name=op.f("pk_participant_roles")),
    )
    op.create_index("ix_participant_roles_role_account", "participant_roles", ["role", "account"], unique=False)
    op.create_table(
        "participants",
        sa.Column("account", sa.String(length=42), nullable=False),
        sa.Column("identity_hash", sa.String(length=66), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("frozen", sa.Boolean(), nullable=False),
        sa.Column("freeze_reason", sa.String(length=66), nullable=True),
        sa.Column("registered_at", sa.BigInteger(), nullable=False),
        sa.Column("registered_by", sa.String(length=42), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_participants")),
    )
    op.create_index("ix_participants_status", "participants", ["status"], unique=False)
    op.create_table(
        "pledge_repayments",
        sa.Column("block_number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("log_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("pledge_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", ChainUint(), nullable=False),
        sa.Column("interest_paid", ChainUint(), nullable=False),
        sa.Column("principal_paid", ChainUint(), nullable=False),
        sa.Column("principal_outstanding", ChainUint(), nullable=False),
        sa.Column("interest_outstanding", ChainUint(), nullable=False),
        sa.PrimaryKeyConstraint("block_number", "log_index", name=op.f("pk_pledge_repayments")),
    )
    op.create_index("ix_pledge_repayments_pledge_id", "pledge_repayments", ["pledge_id"], unique=False)
    op.create_table(
        "redemptions",
        sa.Column("block_number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("log_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("piece_id", sa.BigInteger(), nullable=False),
        sa.Column("slot_id", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(length=42), nullable=False),
        sa.Column("payout", ChainUint(), nullable=False),
        sa.Column("remaining", ChainUint(), nullable=False),
        sa.PrimaryKeyConstraint("block_number", "log_index", name=op.f("pk_redemptions")),
    )
    op.create_index("ix_redemptions_holder", "redemptions", ["holder"], unique=False)
    op.create_index("ix_redemptions_piece_id", "redemptions", ["piece_id"], unique=False)
    op.create_index("ix_redemptions_slot_id", "redemptions", ["slot_id"], unique=False)
    op.create_table(
        "repayments",
        sa.Column("block_number", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("log_index", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("block_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("slot_id", sa.BigInteger(), nullable=False),
        sa.Column("payer", sa.String(length=42), nullable=False),
        sa.Column("amount", ChainUint(), nullable=False),
        sa.Column("repaid", ChainUint(), nullable=False),
        sa.Column("outstanding", ChainUint(), nullable=False),
        sa.PrimaryKeyConstraint("block_number", "log_index", name=op.f("pk_repayments")),
    )
    op.create_index("ix_repayments_payer", "repayments", ["payer"], unique=False)
    op.create_index("ix_repayments_slot_id", "repayments", ["slot_id"], unique=False)
    op.create_table(
        "warehouse_oracles",
        sa.Column("warehouse", sa.String(length=42), nullable=False),
        sa.Column("oracle", sa.String(length=42), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("warehouse", name=op.f("pk_warehouse_oracles")),
    )
    op.create_table(
        "warehouse_receipts",
        sa.Column("id", ChainUint(), autoincrement=False, nullable=False),
        sa.Column("warehouse", sa.String(length=42), nullable=False),
        sa.Column("owner", sa.String(length=42), nullable=True),
        sa.Column("lot_key_hash", sa.String(length=66), nullable=False),
        sa.Column("goods_hash", sa.String(length=66), nullable=False),
        sa.Column("document_hash", sa.String(length=66), nullable=False),
        sa.Column("quantity", ChainUint(), nullable=False),
        sa.Column("unit", sa.String(length=8), nullable=False),
        sa.Column("valuation", ChainUint(), nullable=False),
        sa.Column("valued_at", sa.BigInteger(), nullable=False),
        sa.Column("expiry", ChainUint(), nullable=False),
        sa.Column("goods_status", sa.SmallInteger(), nullable=False),
        sa.Column("state", sa.SmallInteger(), nullable=False),
        sa.Column("frozen", sa.Boolean(), nullable=False),
        sa.Column("pledge_id", sa.BigInteger(), nullable=True),
        sa.Column("oracle", sa.String(length=42), nullable=True),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warehouse_receipts")),
        sa.UniqueConstraint("lot_key_hash", name=op.f("uq_warehouse_receipts_lot_key_hash")),
    )
    op.create_index("ix_warehouse_receipts_owner_id", "warehouse_receipts", ["owner", "id"], unique=False)
    op.create_index("ix_warehouse_receipts_state_id", "warehouse_receipts", ["state", "id"], unique=False)
    op.create_index("ix_warehouse_receipts_warehouse_id", "warehouse_receipts", ["warehouse", "id"], unique=False)
    op.create_table(
        "pieces",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("slot_id", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(length=42), nullable=True),
        sa.Column("value", ChainUint(), nullable=False),
        sa.Column("checkpoint", ChainUint(), nullable=False),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("root_id", sa.BigInteger(), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("frozen", sa.Boolean(), nullable=False),
        sa.Column("open_request_id", sa.BigInteger(), nullable=True),
        sa.Column("burnt", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["parent_id"], ["pieces.id"], name=op.f("fk_pieces_parent_id_pieces")),
        sa.ForeignKeyConstraint(["slot_id"], ["invoices.id"], name=op.f("fk_pieces_slot_id_invoices")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pieces")),
    )
    op.create_index("ix_pieces_owner_id", "pieces", ["owner", "id"], unique=False)
    op.create_index("ix_pieces_parent_id", "pieces", ["parent_id"], unique=False)
    op.create_index("ix_pieces_root_id", "pieces", ["root_id"], unique=False)
    op.create_index("ix_pieces_slot_id_id", "pieces", ["slot_id", "id"], unique=False)
    op.create_table(
        "pledges",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("receipt_id", ChainUint(), nullable=False),
        sa.Column("borrower", sa.String(length=42), nullable=False),
        sa.Column("financier", sa.String(length=42), nullable=False),
        sa.Column("state", sa.SmallInteger(), nullable=False),
        sa.Column("rate_bps", sa.Integer(), nullable=False),
        sa.Column("due_date", ChainUint(), nullable=False),
        sa.Column("principal_requested", ChainUint(), nullable=False),
        sa.Column("principal", ChainUint(), nullable=False),
        sa.Column("interest_due", ChainUint(), nullable=False),
        sa.Column("accrued_from", sa.BigInteger(), nullable=True),
        sa.Column("funded_at", sa.BigInteger(), nullable=True),
        sa.Column("closed_at", sa.BigInteger(), nullable=True),
        sa.Column("margin_called_at", sa.BigInteger(), nullable=True),
        sa.Column("requested_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["receipt_id"], ["warehouse_receipts.id"], name=op.f("fk_pledges_receipt_id_warehouse_receipts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pledges")),
    )
    op.create_index("ix_pledges_borrower_id", "pledges", ["borrower", "id"], unique=False)
    op.create_index("ix_pledges_financier_id", "pledges", ["financier", "id"], unique=False)
    op.create_index("ix_pledges_receipt_id", "pledges", ["receipt_id"], unique=False)
    op.create_index("ix_pledges_state_id", "pledges", ["state", "id"], unique=False)
    op.create_table(
        "financing_requests",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("piece_id", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(length=42), nullable=False),
        sa.Column("financier", sa.String(length=42), nullable=False),
        sa.Column("amount", ChainUint(), nullable=False),
        sa.Column("state", sa.SmallInteger(), nullable=False),
        sa.Column("discount_rate_bps", sa.Integer(), nullable=True),
        sa.Column("day_count_basis", sa.Integer(), nullable=True),
        sa.Column("fee", ChainUint(), nullable=True),
        sa.Column("discount", ChainUint(), nullable=True),
        sa.Column("price", ChainUint(), nullable=True),
        sa.Column("funded_piece_id", sa.BigInteger(), nullable=True),
        sa.Column("requested_at", sa.BigInteger(), nullable=False),
        sa.Column("approved_at", sa.BigInteger(), nullable=True),
        sa.Column("closed_at", sa.BigInteger(), nullable=True),
        sa.Column("updated_block", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["piece_id"], ["pieces.id"], name=op.f("fk_financing_requests_piece_id_pieces")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_financing_requests")),
    )
    op.create_index("ix_financing_requests_financier_id", "financing_requests", ["financier", "id"], unique=False)
    op.create_index("ix_financing_requests_holder_id", "financing_requests", ["holder", "id"], unique=False)
    op.create_index("ix_financing_requests_piece_id", "financing_requests", ["piece_id"], unique=False)
    op.create_index("ix_financing_requests_state_id", "financing_requests", ["state", "id"], unique=False)


def downgrade() -> None:
    # Indexes go with their tables.
    op.drop_table("financing_requests")
    op.drop_table("pledges")
    op.drop_table("pieces")
    op.drop_table("warehouse_receipts")
    op.drop_table("warehouse_oracles")
    op.drop_table("repayments")
    op.drop_table("redemptions")
    op.drop_table("pledge_repayments")
    op.drop_table("participants")
    op.drop_table("participant_roles")
    op.drop_table("ledger_parameters")
    op.drop_table("invoices")
    op.drop_table("index_checkpoint")
    op.drop_table("events")
    op.drop_table("deposit_transfers")
    op.drop_table("credit_lines")
    op.drop_table("credit_grants")
    op.drop_table("blocks")
