"""The warehouse receipt's document (仓单): the elements of GB/T 30332-2024 that are not on chain, checked at issue.

On chain a receipt holds what protects money and names the goods: the warehouse, the owner, the salted lot key
hash, the goods' hash, quantity, unit, valuation, expiry and a document hash. Everything else a 仓单 must state
(《民法典》第九百零九条, and the essential elements of GB/T 30332-2024 仓单要素与格式要求) is written into the receipt
document built here: canonical JSON (keys sorted, UTF-8, no floats, no insignificant white space) titled "仓单",
stored in the encrypted document store, whose SHA-256 goes on chain as the receipt's ``documentHash``. The element
list and where each element lives are in docs/warehouse-receipts.md.

:class:`ReceiptElements` is the ``elements`` object of ``POST /warehouse-receipts``; it is checked strictly (integers
are JSON integers, dates ISO ``YYYY-MM-DD`` text, texts trimmed, non-empty and printable, the depositor's unified
social credit code with its GB 32100-2015 check character), so a bad element is a 422 naming the field and nothing
is stored or sent.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from api.routes.common import MAX_AMOUNT, Bps, json_integer
from ledger.identifiers import InvalidIdentifier, validate_credit_code

FORMAT = "scf-ledger/warehouse-receipt/1"
"""The version of the document's layout (a new layout gets a new number; old documents keep theirs)."""
TITLE = "仓单"
STANDARD = "GB/T 30332-2024 仓单要素与格式要求"
CONTENT_TYPE = "application/json"
RIGHTS_NOTICE = (
    "本仓单是提取仓储物的凭证。存货人或者仓单持有人在仓单上背书并经保管人签名或者盖章的，可以转让提取仓储物的权利；"
    "本仓单可以出质。This receipt is the document for taking delivery of the goods stored; endorsed by its holder "
    "with the warehouse's signature it transfers the right to take delivery, and it may be pledged. On this ledger "
    "the endorsement is the holder's signed transfer of the receipt and the warehouse's signature its issuing "
    "transaction."
)
"""凭证权利提示: the rights the document carries (《民法典》第九百一十条, 第四百四十条); the same on every receipt."""

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _text(value: object, longest: int) -> object:
    """Texts are JSON strings of at most ``longest`` characters as sent (the schema's ``maxLength``), trimmed;
    after trimming non-empty and without control characters."""
    if not isinstance(value, str):
        raise ValueError("must be text")
    if len(value) > longest:
        raise ValueError(f"at most {longest} characters")
    value = value.strip()
    if not value:
        raise ValueError("must not be empty or only white space")
    if not value.isprintable():
        raise ValueError("must not contain control characters or line breaks")
    return value


def _iso_date(value: object) -> object:
    """Dates are ISO ``YYYY-MM-DD`` text (a number would be read as a timestamp: refused)."""
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("a date is ISO text YYYY-MM-DD")
    return value


def _credit_code(value: str) -> str:
    try:
        return validate_credit_code(value)
    except InvalidIdentifier as exc:
        raise ValueError(str(exc)) from None


Name = Annotated[str, BeforeValidator(lambda value: _text(value, 200)), Field(min_length=1, max_length=200)]
Line = Annotated[str, BeforeValidator(lambda value: _text(value, 500)), Field(min_length=1, max_length=500)]
Paragraph = Annotated[str, BeforeValidator(lambda value: _text(value, 2000)), Field(min_length=1, max_length=2000)]
IsoDate = Annotated[date, BeforeValidator(_iso_date)]
Fen = Annotated[int, BeforeValidator(json_integer), Field(ge=0, le=MAX_AMOUNT, description="fen (integer)")]
PositiveFen = Annotated[int, BeforeValidator(json_integer), Field(gt=0, le=MAX_AMOUNT, description="fen (integer)")]
Pieces = Annotated[int, BeforeValidator(json_integer), Field(ge=1, le=2**32 - 1, description="a JSON integer")]
CreditCode = Annotated[
    str,
    AfterValidator(_credit_code),
    Field(
        min_length=18,
        max_length=18,
        json_schema_extra={"pattern": "^[0-9A-HJ-NP-RTUWXY]{18}$"},
        description="unified social credit code (GB 32100-2015), its 18th character the check character",
        examples=["91310000MA1FL0JB4L"],
    ),
]


class _Elements(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Depositor(_Elements):
    """存货人: name, domicile and valid identification (a firm's unified social credit code, sent as
    it is printed: 18 ASCII characters, no spaces)."""

    name: Name = Field(description="存货人名称", examples=["上海钢联贸易有限公司"])
    domicile: Line = Field(description="住所", examples=["上海市宝山区友谊路1号"])
    credit_code: CreditCode


class Goods(_Elements):
    """仓储物: variety, specification, quality, packaging, number of pieces and marks."""

    variety: Name = Field(description="品种", examples=["热轧卷板"])
    specification: Line = Field(description="规格", examples=["Q235B 5.75×1500 mm"])
    quality: Line = Field(description="质量 (grade, standard, inspection)", examples=["GB/T 3274-2017 合格"])
    packaging: Line = Field(description="包装", examples=["裸装，钢带捆扎"])
    pieces: Pieces = Field(description="件数", examples=[40])
    marks: Line = Field(description="标记", examples=["卷号 C2501-001 至 C2501-040"])


class LossStandard(_Elements):
    """仓储物的损耗标准: in words, and as the tolerated shortfall in basis points of the quantity."""

    description: Paragraph = Field(description="损耗标准", examples=["合理损耗不超过0.3%，超出部分由保管人赔偿"])
    tolerance_bps: Bps = Field(description="the tolerated loss, basis points of the quantity", examples=[30])


class StoragePeriod(_Elements):
    """储存期限: from this date to the receipt's expiry (on chain)."""

    start: IsoDate = Field(description="储存期限起始日, on or before the receipt's expiry")


class StorageFee(_Elements):
    """仓储费: the amount in fen and its basis."""

    amount: Fen = Field(description="仓储费, fen")
    basis: Line = Field(description="计费方式", examples=["每吨每日0.50元，按月结算"])


class Insurance(_Elements):
    """仓储物已经办理保险的，其保险金额、期间以及保险人的名称."""

    amount: PositiveFen = Field(description="保险金额, fen")
    start: IsoDate = Field(description="保险期间起始日")
    end: IsoDate = Field(description="保险期间终止日, on or after the start")
    insurer: Name = Field(description="保险人名称", examples=["中国人民财产保险股份有限公司上海市分公司"])

    @model_validator(mode="after")
    def _period(self) -> Insurance:
        if self.end < self.start:
            raise ValueError("the insurance ends before it starts")
        return self


class ReceiptElements(_Elements):
    """The elements of the 仓单 that are not on chain (see the module's docstring and docs/warehouse-receipts.md)."""

    depositor: Depositor
    goods: Goods
    loss_standard: LossStandard
    storage_place: Line = Field(description="储存场所", examples=["上海宝山钢材物流园3号库A区"])
    storage_period: StoragePeriod
    storage_fee: StorageFee
    insurance: Insurance | None = Field(None, description="null or absent: the goods are not insured")
    issuer: Name = Field(description="填发人 (who drew up the receipt for the warehouse)", examples=["张伟"])
    issue_place: Name = Field(description="填发地", examples=["上海市宝山区"])


def canonical_json(value: Any) -> bytes:
    """Keys sorted, UTF-8 (not ``\\u`` escapes), no insignificant white space; floats are refused."""

    def no_floats(item: Any) -> None:
        if isinstance(item, float):
            raise TypeError("a receipt document holds no floats")
        if isinstance(item, dict):
            for child in item.values():
                no_floats(child)
        elif isinstance(item, list):
            for child in item:
                no_floats(child)

    no_floats(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def receipt_document(
    *,
    elements: ReceiptElements,
    receipt_id: int,
    warehouse: str,
    owner: str,
    lot_number: str,
    goods_description: str,
    goods_hash: bytes,
    quantity: int,
    unit: str,
    valuation: int,
    expiry: date,
    issue_date: date,
    attachment_sha256: str | None,
) -> bytes:
    """The receipt document's bytes (what is hashed, stored and served)."""
    if elements.storage_period.start > expiry:
        raise ValueError("the storage period starts after the receipt expires")
    document: dict[str, Any] = {
        "title": TITLE,
        "standard": STANDARD,
        "format": FORMAT,
        "rights_notice": RIGHTS_NOTICE,
        "receipt_number": str(receipt_id),
        "lot_number": lot_number,
        "on_chain": {
            "warehouse": warehouse,
            "owner": owner,
            "goods_description": goods_description,
            "goods_hash": "0x" + goods_hash.hex(),
            "quantity": quantity,
            "unit": unit,
            "valuation": valuation,
            "expiry": expiry.isoformat(),
        },
        "issue_date": issue_date.isoformat(),
        "elements": elements.model_dump(mode="json", exclude_none=True),
    }
    document["elements"]["storage_period"]["end"] = expiry.isoformat()
    if attachment_sha256 is not None:
        document["attachment_sha256"] = attachment_sha256.removeprefix("0x").lower()
    return canonical_json(document)
