"""The fee-and-rate disclosure and the credit review of a financing request (``financing_requests``): the most
the holder accepted when it asked (``max_discount_rate_bps`` a year on a 365-day basis, ``max_fee``) and the
financier's credit review (``review``, the hash or reference it recorded with its approval; 32 zero bytes when it
recorded none). The events were already kept in the raw event log: this revision fills the columns from that
log, so an existing index agrees with the chain without a rebuild (null for requests whose events did not carry
them, from contracts before the rules).

Revision ID: 0016_financing_caps
Revises: 0015_financing_offers
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from ledger.index.models import ChainUint

revision: str = "0016_financing_caps"
down_revision: str | Sequence[str] | None = "0015_financing_offers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ALTER TABLE on both databases (SQLite adds and drops columns natively since 3.35): a batch copy of
    # the table would have to reflect its ChainUint columns, which SQLite reflects without a type.
    op.add_column("financing_requests", sa.Column("max_discount_rate_bps", sa.Integer(), nullable=True))
    op.add_column("financing_requests", sa.Column("max_fee", ChainUint(), nullable=True))
    op.add_column("financing_requests", sa.Column("review", sa.String(length=66), nullable=True))
    events = sa.table(
        "events",
        sa.column("block_number", sa.BigInteger()),
        sa.column("log_index", sa.Integer()),
        sa.column("contract", sa.String()),
        sa.column("name", sa.String()),
        sa.column("args", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
    )
    requests = sa.table(
        "financing_requests",
        sa.column("id", sa.BigInteger()),
        sa.column("max_discount_rate_bps", sa.Integer()),
        sa.column("max_fee", ChainUint()),
        sa.column("review", sa.String()),
    )
    query = (
        sa.select(events.c.name, events.c.args)
        .where(events.c.contract == "receivables", events.c.name.in_(("FinancingRequested", "FinancingApproved")))
        .order_by(events.c.block_number, events.c.log_index)
    )
    bind = op.get_bind()
    for name, args in bind.execute(query).all():
        request = requests.c.id == int(args["requestId"])
        if name == "FinancingRequested" and "maxFee" in args:
            caps = {"max_discount_rate_bps": int(args["maxDiscountRateBps"]), "max_fee": int(args["maxFee"])}
            bind.execute(requests.update().where(request).values(**caps))
        elif name == "FinancingApproved" and "review" in args:
            bind.execute(requests.update().where(request).values(review=str(args["review"])))


def downgrade() -> None:
    op.drop_column("financing_requests", "review")
    op.drop_column("financing_requests", "max_fee")
    op.drop_column("financing_requests", "max_discount_rate_bps")
