"""Registrations in 中登网 (动产和权利担保统一登记) recorded by financiers on chain: the initial registration number,
the registration's date and when it was recorded, on ``financing_requests`` and ``pledges`` (null while
unregistered). The events are new with this revision's contracts, so there is nothing to fill from the raw log.

Revision ID: 0020_registrations
Revises: 0019_identifier_labels
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_registrations"
down_revision: str | Sequence[str] | None = "0019_identifier_labels"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("financing_requests", "pledges")


def upgrade() -> None:
    # Plain ALTER TABLE on both databases, as in 0016 (a batch copy would reflect ChainUint columns untyped).
    for table in _TABLES:
        op.add_column(table, sa.Column("registration_number", sa.String(length=32), nullable=True))
        op.add_column(table, sa.Column("registered_at", sa.BigInteger(), nullable=True))
        op.add_column(table, sa.Column("registration_recorded_at", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    for table in _TABLES:
        op.drop_column(table, "registration_recorded_at")
        op.drop_column(table, "registered_at")
        op.drop_column(table, "registration_number")
