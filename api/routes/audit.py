"""The service's own audit log (:mod:`api.audit_log`): read it, verify it against the chain, anchor it.

- ``GET /audit/log``: the records in order, from ``after`` on (regulator or operator).
- ``GET /audit/log/verify``: every hash recomputed, every link checked, and the log compared with every anchor
  of its head on chain (regulator or operator). ``valid`` is false from the first record that does not
  verify, with its sequence and the reason.
- ``POST /audit/log/anchors``: anchor the head on chain now, waiting for the block (operator); ``anchored``
  is false when the head was anchored already. The anchorer also does this by itself, every so many records
  or seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from api.audit_log import AuditVerification, record_view
from api.auth import CurrentCaller, Service, require_role
from api.exports import ExportFormat, FormatQuery, Table, columns_of, export_response
from api.models import AuditAnchorResult, AuditLogPage, AuditRecordView, AuditVerificationView
from api.problems import Problem, from_contract
from api.routes.common import QueryInt
from api.service import LedgerService
from ledger.errors import ContractRevert
from ledger.models import Role

router = APIRouter(prefix="/audit/log", tags=["audit"])

_EXPORT_BATCH = 1000


def _verify(service: LedgerService) -> AuditVerification:
    anchors = service.client.audit_anchors(service.deployment.block_number)
    return service.audit_log.verify(anchors)


@router.get("", response_model=AuditLogPage)
def list_audit_log(
    service: Service,
    caller: CurrentCaller,
    after: Annotated[QueryInt, Query(ge=0, description="the sequence to start after")] = 0,
    size: Annotated[QueryInt, Query(ge=1, le=500)] = 100,
    export: FormatQuery = ExportFormat.JSON,
) -> AuditLogPage | Response:
    """Records of the audit log in order, each with its hash and its predecessor's: to the regulator and the
    operator. As a file (`format=csv` or `xlsx`): every record after `after` (see docs/reports.md)."""
    require_role(caller, Role.REGULATOR, Role.OPERATOR)
    if export is not ExportFormat.JSON:

        def rows() -> Iterator[dict[str, Any]]:
            first = after + 1
            while records := service.audit_log.page(first, _EXPORT_BATCH):
                yield from (record_view(r).model_dump(mode="json") for r in records)
                first = records[-1].sequence + 1

        return export_response(export, "audit-log", [Table("audit-log", columns_of(AuditRecordView), rows())])
    records = service.audit_log.page(after + 1, size)
    return AuditLogPage(items=[record_view(r) for r in records], after=after, size=size)


@router.get("/verify", response_model=AuditVerificationView)
async def verify_audit_log(service: Service, caller: CurrentCaller) -> AuditVerificationView:
    """Verify the whole audit log: hashes, links, and every anchor of its head on chain; to the regulator and
    the operator."""
    require_role(caller, Role.REGULATOR, Role.OPERATOR)
    verification = await run_in_threadpool(_verify, service)
    return verification.view()


@router.post("/anchors", response_model=AuditAnchorResult, response_model_exclude_unset=True)
async def anchor_audit_log(service: Service, caller: CurrentCaller) -> dict[str, Any]:
    """Anchor the audit log's head on chain now and wait for the block."""
    require_role(caller, Role.OPERATOR)
    try:
        result = await service.audit_anchorer.anchor()
    except ContractRevert as exc:
        raise from_contract(exc) from None
    except TimeoutError:
        detail = "the anchor was sent but is not in a block yet"
        raise Problem(504, "anchor-pending", "Anchor pending", detail) from None
    if result is None:
        head = service.audit_log.head()
        return {"anchored": False, "sequence": head.sequence, "hash": head.hash}
    return {
        "anchored": True,
        "sequence": result.sequence,
        "hash": result.hash,
        "operation_id": result.operation_id,
        "block_number": result.block_number,
    }
