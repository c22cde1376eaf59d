"""Projections of the participant registry (``registry``): participants, their freezes and roles."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ledger.index.decoding import ChainEvent
from ledger.index.projections.support import ProjectionTable, registrar
from ledger.models import ParticipantStatus, Role

if TYPE_CHECKING:
    from ledger.index.unit_of_work import Projector

#: AccessControl role id (hex) → role name; ``admin`` is OpenZeppelin's ``DEFAULT_ADMIN_ROLE``.
ROLE_NAMES: Mapping[str, str] = {
    "0x" + "00" * 32: "admin",
    **{"0x" + role.role_id.hex(): role.role_name for role in Role},
}

EVENT_PROJECTIONS: ProjectionTable = {}
_projection = registrar(EVENT_PROJECTIONS)


# -- participant registry -----------------------------------------------------------------------------------


@_projection("registry", "ParticipantRegistered")
def _participant_registered(p: Projector, e: ChainEvent) -> None:
    p.participants.add(
        {
            "account": e.args["account"],
            "identity_hash": e.args["identityHash"],
            "status": ParticipantStatus.ACTIVE,
            "frozen": False,
            "freeze_reason": None,
            "registered_at": e.block_timestamp,
            "registered_by": e.args["operator"],
            "updated_block": e.block_number,
        }
    )


@_projection("registry", "ParticipantIdentityUpdated")
def _participant_identity_updated(p: Projector, e: ChainEvent) -> None:
    p.change(p.participants, e.args["account"], e, identity_hash=e.args["identityHash"])


@_projection("registry", "ParticipantSuspended", "ParticipantReinstated")
def _participant_status_changed(p: Projector, e: ChainEvent) -> None:
    status = ParticipantStatus.SUSPENDED if e.name == "ParticipantSuspended" else ParticipantStatus.ACTIVE
    p.change(p.participants, e.args["account"], e, status=status)


@_projection("registry", "ParticipantFrozen")
def _participant_frozen(p: Projector, e: ChainEvent) -> None:
    p.change(p.participants, e.args["account"], e, frozen=True, freeze_reason=e.args["reason"])


@_projection("registry", "ParticipantUnfrozen")
def _participant_unfrozen(p: Projector, e: ChainEvent) -> None:
    p.change(p.participants, e.args["account"], e, frozen=False, freeze_reason=None)


@_projection("registry", "RoleGranted")
def _role_granted(p: Projector, e: ChainEvent) -> None:
    account, role = e.args["account"], ROLE_NAMES.get(e.args["role"], e.args["role"])
    if p.roles.get((account, role)) is None:
        p.roles.add({"account": account, "role": role, "granted_by": e.args["sender"], "updated_block": e.block_number})
    else:
        p.change(p.roles, (account, role), e, granted_by=e.args["sender"])


@_projection("registry", "RoleRevoked")
def _role_revoked(p: Projector, e: ChainEvent) -> None:
    p.roles.remove((e.args["account"], ROLE_NAMES.get(e.args["role"], e.args["role"])))
