"""Comparing indexes: a live index and one rebuilt from block 0 must hold the same rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.index.models import INDEX_TABLES, IndexCheckpointRow
from ledger.index.unit_of_work import table_of


def snapshot_tables(session: Session) -> dict[str, list[dict[str, Any]]]:
    """Every row of the raw event log, its blocks and every projection, by table, in primary-key order, as
    plain Python values: two indexes of the same chain compare equal exactly when their snapshots do. (The
    checkpoint is left out: it says how far each has read, not what it holds.)"""
    snapshot: dict[str, list[dict[str, Any]]] = {}
    for model in INDEX_TABLES:
        if model is IndexCheckpointRow:
            continue
        table = table_of(model)
        query = select(table).order_by(*table.primary_key.columns)
        snapshot[table.name] = [
            {name: _plain(value) for name, value in row.items()} for row in session.execute(query).mappings()
        ]
    return snapshot


def _plain(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    return value
