"""The projections: one function per event that changes the index's tables, grouped by contract, one module
each. Here they are assembled into the one table :class:`ledger.index.unit_of_work.Projector` applies.

The audit anchor (``anchor``) has no module: its only event is kept in the raw log (:data:`RAW_ONLY_EVENTS`).
"""

from __future__ import annotations

from ledger.index.projections import deposits, participants, receivables, warehouse_receipts
from ledger.index.projections.support import Projection, ProjectionTable

#: ``(contract, event) → projection`` of every contract.
EVENT_PROJECTIONS: ProjectionTable = {
    **participants.EVENT_PROJECTIONS,
    **deposits.EVENT_PROJECTIONS,
    **receivables.EVENT_PROJECTIONS,
    **warehouse_receipts.EVENT_PROJECTIONS,
}

#: Events kept in the raw log only: ERC-721 approvals (the service reads them from the chain when it needs
#: them; ERC-3525 value allowances are projected), role administration, and the signed acts' own records.
RAW_ONLY_EVENTS: frozenset[tuple[str, str]] = frozenset(
    {
        ("registry", "RoleAdminChanged"),
        ("token", "Approval"),
        ("receivables", "Approval"),
        ("receivables", "ApprovalForAll"),
        ("receipts", "Approval"),
        ("receipts", "ApprovalForAll"),
        ("anchor", "AuditLogAnchored"),  # the service's audit log verifies against the chain, not the index
        # Self-custody: who signs is read from the registry when shown (signerOf); the acts' evidence is rebuilt
        # from each transaction (GET /acts/{tx_hash}); the raw log keeps every one for the feed and the auditors.
        ("registry", "SelfCustodyAdopted"),
        ("registry", "SignerRotated"),
        ("registry", "KeyRecoveryProposed"),
        ("registry", "KeyRecovered"),
        ("registry", "SignedActsSet"),
        ("acts", "ActPerformed"),
        ("acts", "NoncesInvalidated"),
        ("acts", "EIP712DomainChanged"),  # EIP-5267's event; the domain never changes, so it is never emitted
        # Sensors (docs/sensors.md): the service keeps each anchored period with its alert (sensor_anchors) and the
        # margin call is projected from PledgeMarginCalled; the raw log keeps both for the feed and the auditors.
        ("receipts", "ReceiptReadingsAnchored"),
        ("receipts", "ReceiptCollateralShortfall"),
    }
)


def projected_events() -> set[tuple[str, str]]:
    """The ``(contract, event)`` pairs that change a projection; every other event is kept in the raw log only."""
    return set(EVENT_PROJECTIONS)


__all__ = ["EVENT_PROJECTIONS", "RAW_ONLY_EVENTS", "Projection", "ProjectionTable", "projected_events"]
