"""Example data for the demo, the tests and the benchmarks: one realistic set of a warehouse receipt's elements
(the ``elements`` of ``POST /warehouse-receipts``, see docs/warehouse-receipts.md), shared so that every caller
that issues receipts sends the same, checked shape."""

from __future__ import annotations

from typing import Any

from ledger.identifiers import synthetic_credit_code

YUAN = 100


def receipt_elements(
    *,
    depositor: str = "上海钢联贸易有限公司",
    credit_code: str | None = None,
    storage_from: str = "2025-12-01",
    pieces: int = 40,
    insured: bool = True,
) -> dict[str, Any]:
    """The elements of a 仓单 for hot-rolled coil stored in a Shanghai warehouse: the depositor (a well-formed,
    made-up credit code unless one is given), the goods, the loss standard, the place, the period from
    ``storage_from`` (ISO; it ends at the receipt's expiry), the fee, an insurance (unless ``insured`` is false),
    the issuer and the place of issue. Amounts in fen."""
    elements: dict[str, Any] = {
        "depositor": {
            "name": depositor,
            "domicile": "上海市宝山区友谊路1号",
            "credit_code": credit_code or synthetic_credit_code(909),
        },
        "goods": {
            "variety": "热轧卷板 hot-rolled coil",
            "specification": "Q235B 5.75×1500 mm",
            "quality": "GB/T 3274-2017 合格，附质保书",
            "packaging": "裸装，钢带捆扎 (bare, steel-strapped)",
            "pieces": pieces,
            "marks": "卷号 C2501-001 至 C2501-040",
        },
        "loss_standard": {"description": "合理损耗不超过0.3%，超出部分由保管人赔偿", "tolerance_bps": 30},
        "storage_place": "上海宝山钢材物流园3号库A区 (Baoshan steel park, store 3, bay A)",
        "storage_period": {"start": storage_from},
        "storage_fee": {"amount": 15_000 * YUAN, "basis": "每吨每日0.50元，按月结算 (0.50 yuan per tonne per day)"},
        "issuer": "张伟",
        "issue_place": "上海市宝山区",
    }
    if insured:
        elements["insurance"] = {
            "amount": 4_200_000 * YUAN,
            "start": storage_from,
            "end": "2027-12-31",
            "insurer": "中国人民财产保险股份有限公司上海市分公司",
        }
    return elements
