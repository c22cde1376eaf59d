"""The fee-and-rate disclosure and the credit review of a financing request (``financing_requests``): the most
the holder accepted when it asked (``max_discount_rate_bps`` a year on a 365-day basis, ``max_fee``) and the
financier's credit review (``review``, the hash or reference it recorded with its approval; 32 zero bytes when it
recorded none). Null for requests indexed before the contracts carried them.

Revision ID: 0016_financing_caps
Revises: 0015_financing_offers
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ledger.index.models import ChainUint

revision: str = "0016_financing_caps"
down_revision: str | Sequence[str] | None = "0015_financing_offers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("financing_requests") as batch:
        batch.add_column(sa.Column("max_discount_rate_bps", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("max_fee", ChainUint(), nullable=True))
        batch.add_column(sa.Column("review", sa.String(length=66), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("financing_requests") as batch:
        batch.drop_column("review")
        batch.drop_column("max_fee")
        batch.drop_column("max_discount_rate_bps")
