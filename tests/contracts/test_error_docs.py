"""Every custom error in every compiled ABI says what it means: a NatSpec sentence, and a kind that is its HTTP status.

The kind of one of our errors is declared beside it in the contracts (``/// @custom:kind conflict``) and read
from the compiled ``devdoc``; the library errors our ABIs carry (OpenZeppelin's) have theirs in
``ledger.errors.LIBRARY_ERROR_KINDS``. A new error without a kind fails here, instead of quietly becoming a 422.

``STATUS_BEFORE_KINDS`` is the status every error name of every ABI had when ``api.problems`` still chose it by
hand (the ``_NOT_FOUND`` / ``_CONFLICT`` lists and the name-suffix rules), captured from that code on
2026-12-05: the kinds must give each the same status. An error added since is not in it (its kind is
reviewed where it is declared); one removed since is skipped.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from api.problems import KIND_STATUS, contract_status, from_contract
from ledger.compiler import Artifact, compile_contracts
from ledger.errors import KIND_TAG, LIBRARY_ERROR_KINDS, ContractRevert, ErrorDecoder, ErrorKind, error_kinds

REPO = Path(__file__).resolve().parents[2]

STATUS_BEFORE_KINDS: dict[str, int] = {
    "AccessControlBadConfirmation": 422,
    "AccessControlUnauthorizedAccount": 403,
    "AuditAnchorInvalidHead": 422,
    "AuditAnchorNotAdvancing": 422,
    "BenchInsufficientBalance": 422,
    "BenchNonexistentToken": 422,
    "BenchNotAuthorized": 403,
    "BenchZeroAddress": 422,
    "DepositBurnReferenceUsed": 409,
    "DepositEscrowNotBurnable": 422,
    "DepositInvalidReference": 422,
    "DepositMintReferenceUsed": 409,
    "DepositZeroAmount": 422,
    "ERC20InsufficientAllowance": 409,
    "ERC20InsufficientBalance": 409,
    "ERC20InvalidApprover": 422,
    "ERC20InvalidReceiver": 422,
    "ERC20InvalidSender": 422,
    "ERC20InvalidSpender": 422,
    "ERC721IncorrectOwner": 422,
    "ERC721InsufficientApproval": 422,
    "ERC721InvalidApprover": 422,
    "ERC721InvalidOperator": 422,
    "ERC721InvalidOwner": 422,
    "ERC721InvalidReceiver": 422,
    "ERC721InvalidSender": 422,
    "ERC721NonexistentToken": 422,
    "PledgeExceedsAdvanceLimit": 422,
    "PledgeFinancierIsBorrower": 422,
    "PledgeInvalidAdvanceRate": 422,
    "PledgeInvalidDueDate": 422,
    "PledgeInvalidMaintenanceRatio": 422,
    "PledgeInvalidTransition": 409,
    "PledgeNotActive": 409,
    "PledgeNotBorrower": 403,
    "PledgeNotDue": 422,
    "PledgeNotFinancier": 403,
    "PledgeNotFound": 404,
    "PledgePastDue": 422,
    "PledgeRepaymentExceedsDebt": 422,
    "PledgeZeroPrincipal": 422,
    "PledgeZeroRepayment": 422,
    "ReceiptAlreadyPledged": 409,
    "ReceiptExpired": 422,
    "ReceiptGoodsNotSound": 422,
    "ReceiptInvalidDocuments": 422,
    "ReceiptInvalidExpiry": 422,
    "ReceiptInvalidLotKey": 422,
    "ReceiptInvalidQuantity": 422,
    "ReceiptInvalidTransition": 409,
    "ReceiptInvalidValuation": 422,
    "ReceiptIsFrozen": 409,
    "ReceiptLocked": 409,
    "ReceiptLotAlreadyReceipted": 409,
    "ReceiptNotAttester": 403,
    "ReceiptNotFound": 404,
    "ReceiptNotFrozen": 409,
    "ReceiptNotIssuer": 403,
    "ReceiptNotOwner": 403,
    "ReceivablesAmountTooLarge": 422,
    "ReceivablesCheckpointMismatch": 422,
    "ReceivablesCreditLineBelowUsage": 409,
    "ReceivablesCreditLineExceeded": 409,
    "ReceivablesCurrencyMismatch": 422,
    "ReceivablesDueDateNotInFuture": 422,
    "ReceivablesInsufficientAllowance": 422,
    "ReceivablesInsufficientValue": 422,
    "ReceivablesInvalidKey": 422,
    "ReceivablesInvalidParameters": 422,
    "ReceivablesInvalidReceiver": 422,
    "ReceivablesInvalidTerms": 422,
    "ReceivablesInvalidTransition": 409,
    "ReceivablesInvoiceAlreadyRegistered": 409,
    "ReceivablesMatured": 422,
    "ReceivablesNonexistentPiece": 404,
    "ReceivablesNotAuthorized": 403,
    "ReceivablesNotBuyer": 403,
    "ReceivablesNotFinancier": 403,
    "ReceivablesNotHolder": 403,
    "ReceivablesNotOverdue": 422,
    "ReceivablesNotRequestHolder": 403,
    "ReceivablesNotTransferable": 409,
    "ReceivablesNothingToRedeem": 422,
    "ReceivablesOverpayment": 422,
    "ReceivablesPieceFrozen": 409,
    "ReceivablesPieceLocked": 409,
    "ReceivablesPieceNotFrozen": 409,
    "ReceivablesPriceNotPositive": 422,
    "ReceivablesRequestInvalidTransition": 409,
    "ReceivablesSelfBilling": 422,
    "ReceivablesSelfFinancing": 422,
    "ReceivablesSelfTransfer": 422,
    "ReceivablesSlotMismatch": 422,
    "ReceivablesTenorTooLong": 422,
    "ReceivablesTooManyValueApprovals": 409,
    "ReceivablesUnknownInvoice": 404,
    "ReceivablesUnknownRequest": 404,
    "ReceivablesZeroAmount": 422,
    "RegistryAlreadyRegistered": 409,
    "RegistryInvalidParticipant": 422,
    "RegistryMissingRole": 403,
    "RegistryNoChange": 409,
    "RegistryNotRegistered": 404,
    "RegistryParticipantFrozen": 409,
    "RegistryParticipantNotActive": 409,
    "RegistryRecipientIsLedgerContract": 422,
    "RegistryRoleForUnregistered": 422,
    "SafeCastOverflowedUintDowncast": 422,
    "SafeERC20FailedOperation": 422,
    "StringsInsufficientHexLength": 422,
}


@pytest.fixture(scope="module")
def artifacts() -> dict[str, Artifact]:
    return compile_contracts()


def abi_errors(artifacts: Mapping[str, Artifact]) -> dict[str, set[str]]:
    """Signature (``Name(types)``) of every custom error of every ABI → the artifacts whose ABI has it."""
    found: dict[str, set[str]] = {}
    for artifact in artifacts.values():
        for entry in artifact.abi:
            if entry["type"] == "error":
                types = ",".join(_canonical(i) for i in entry["inputs"])
                found.setdefault(f"{entry['name']}({types})", set()).add(artifact.name)
    return found


def _canonical(entry: Mapping[str, object]) -> str:
    kind = str(entry["type"])
    if kind.startswith("tuple"):
        components = entry["components"]
        assert isinstance(components, list)
        return f"({','.join(_canonical(c) for c in components)}){kind[len('tuple') :]}"
    return kind


def missing_kinds(artifacts: Mapping[str, Artifact]) -> list[str]:
    """The ABI errors with no kind, each with the contracts whose ABI has it."""
    kinds = error_kinds(artifacts)
    return sorted(
        f"{signature} (in {', '.join(sorted(owners))})"
        for signature, owners in abi_errors(artifacts).items()
        if signature.split("(", 1)[0] not in kinds
    )


def missing_sentences(artifacts: Mapping[str, Artifact]) -> list[str]:
    """The ABI errors with no NatSpec sentence (an ``@notice`` or ``@dev`` in any artifact that has the error)."""
    missing = []
    for signature, owners in abi_errors(artifacts).items():
        texts = [
            str(doc.get(key, "")).strip()
            for owner in owners
            for section, key in ((artifacts[owner].userdoc, "notice"), (artifacts[owner].devdoc, "details"))
            for doc in (section.get("errors") or {}).get(signature, [])
        ]
        if not any(_is_sentence(text) for text in texts):
            missing.append(f"{signature} (in {', '.join(sorted(owners))})")
    return sorted(missing)


def _is_sentence(text: str) -> bool:
    return len(text.split()) >= 3 and text.endswith((".", ")"))


# -- the checks ---------------------------------------------------------------------------------------------


def test_every_custom_error_in_every_abi_has_a_kind(artifacts: dict[str, Artifact]) -> None:
    assert abi_errors(artifacts), "no custom error in any ABI: the artifacts were not read"
    missing = missing_kinds(artifacts)
    assert not missing, (
        "these errors have no kind: add `/// @custom:kind <"
        + "|".join(k.value for k in ErrorKind)
        + ">` above the declaration (or, for a library error, a line in ledger.errors.LIBRARY_ERROR_KINDS): "
        + "; ".join(missing)
    )


def test_every_custom_error_in_every_abi_has_a_natspec_sentence(artifacts: dict[str, Artifact]) -> None:
    missing = missing_sentences(artifacts)
    assert not missing, "these errors have no `/// @notice` (or `@dev`) sentence: " + "; ".join(missing)


def test_the_kinds_give_every_error_the_status_it_had_before(artifacts: dict[str, Artifact]) -> None:
    kinds = error_kinds(artifacts)
    decoder = ErrorDecoder.from_artifacts(artifacts)
    compared = 0
    for name, before in sorted(STATUS_BEFORE_KINDS.items()):
        if name not in kinds:
            continue  # removed since
        assert KIND_STATUS[kinds[name]] == before, f"{name}: {kinds[name].value} is {KIND_STATUS[kinds[name]]}"
        error = decoder.exception_class(name)({})
        assert contract_status(error) == before, name
        problem = from_contract(error)
        assert (problem.status, problem.type) == (before, f"urn:scf:problem:contract:{name}")
        compared += 1
    assert compared >= 100, f"only {compared} of the {len(STATUS_BEFORE_KINDS)} errors are still in the ABIs"


def test_every_kind_is_a_status() -> None:
    assert set(KIND_STATUS) == set(ErrorKind)
    assert set(KIND_STATUS.values()) == {403, 404, 409, 422}


def test_the_library_table_holds_only_library_errors_that_our_abis_carry(artifacts: dict[str, Artifact]) -> None:
    """A name in LIBRARY_ERROR_KINDS is declared in no source of ours (those carry their kind beside them), has
    no @custom:kind of its own, and is in some ABI (no stale rows)."""
    ours = "\n".join(path.read_text(encoding="utf-8") for path in sorted((REPO / "contracts").glob("**/*.sol")))
    in_abis = {signature.split("(", 1)[0] for signature in abi_errors(artifacts)}
    tagged = {
        signature.split("(", 1)[0]
        for artifact in artifacts.values()
        for signature, docs in (artifact.devdoc.get("errors") or {}).items()
        if any(KIND_TAG in doc for doc in docs)
    }
    for name in LIBRARY_ERROR_KINDS:
        assert not re.search(rf"\berror\s+{name}\s*\(", ours), f"{name} is declared under contracts/"
        assert name not in tagged, f"{name} has its own @custom:kind"
        assert name in in_abis, f"{name} is in no ABI any more: remove it from LIBRARY_ERROR_KINDS"


def test_a_decoder_from_the_artifacts_gives_each_error_class_its_kind(artifacts: dict[str, Artifact]) -> None:
    decoder = ErrorDecoder.from_artifacts(artifacts)
    assert decoder.exception_class("ReceivablesPieceLocked").kind is ErrorKind.CONFLICT
    assert decoder.exception_class("ReceivablesUnknownInvoice").kind is ErrorKind.NOT_FOUND
    assert decoder.exception_class("AccessControlUnauthorizedAccount").kind is ErrorKind.FORBIDDEN
    assert decoder.exception_class("ERC721InvalidReceiver").kind is ErrorKind.INVALID
    # a journal keeps a revert that matched no error as "UnknownRevert": it is a 422, as before
    assert decoder.exception_class("UnknownRevert").kind is ErrorKind.INVALID


# -- the checks can fail ------------------------------------------------------------------------------------


def _without_error_docs(artifacts: Mapping[str, Artifact], name: str, *, section: str) -> dict[str, Artifact]:
    """The artifacts with error ``name``'s entries removed from every ``devdoc`` or ``userdoc``."""
    doctored = {}
    for key, artifact in artifacts.items():
        doc = dict(getattr(artifact, section))
        errors = {s: d for s, d in (doc.get("errors") or {}).items() if s.split("(", 1)[0] != name}
        doctored[key] = dataclasses.replace(artifact, **{section: {**doc, "errors": errors}})
    return doctored


def test_an_error_without_its_kind_is_reported(artifacts: dict[str, Artifact]) -> None:
    doctored = _without_error_docs(artifacts, "ReceivablesPieceLocked", section="devdoc")
    assert missing_kinds(doctored) == ["ReceivablesPieceLocked(uint256,uint256) (in IReceivables, Receivables)"]
    assert "ReceivablesPieceLocked" not in error_kinds(doctored)


def test_an_error_without_its_sentence_is_reported(artifacts: dict[str, Artifact]) -> None:
    doctored = _without_error_docs(artifacts, "ReceiptLocked", section="userdoc")
    assert missing_sentences(doctored) == ["ReceiptLocked(uint256,uint8) (in IWarehouseReceipts, WarehouseReceipts)"]


def test_a_kind_that_is_no_kind_or_two_kinds_for_one_error_are_refused(artifacts: dict[str, Artifact]) -> None:
    registry = artifacts["IParticipantRegistry"]
    errors = registry.devdoc["errors"]
    signature = next(s for s in errors if s.startswith("RegistryNoChange("))

    teapot = dataclasses.replace(registry, devdoc={**registry.devdoc, "errors": {signature: [{KIND_TAG: "teapot"}]}})
    with pytest.raises(ValueError, match=r"RegistryNoChange.*'teapot'; expected one of forbidden"):
        error_kinds([teapot])

    other = dataclasses.replace(
        registry, name="Other", devdoc={**registry.devdoc, "errors": {signature: [{KIND_TAG: "invalid"}]}}
    )
    with pytest.raises(ValueError, match="RegistryNoChange is declared conflict in IParticipantRegistry and invalid"):
        error_kinds([registry, other])


def test_an_error_class_without_a_kind_is_a_logged_422(caplog: pytest.LogCaptureFixture) -> None:
    unkinded = type("MadeUpErrorWithoutKind", (ContractRevert,), {"error_name": "MadeUpErrorWithoutKind"})
    with caplog.at_level(logging.WARNING, logger="api"):
        assert contract_status(unkinded) == 422
    assert "MadeUpErrorWithoutKind has no kind" in caplog.text


def test_one_error_name_cannot_have_two_kinds() -> None:
    ErrorDecoder([], kinds={"MadeUpErrorWithAKind": ErrorKind.CONFLICT})
    assert ErrorDecoder.exception_class("MadeUpErrorWithAKind").kind is ErrorKind.CONFLICT
    with pytest.raises(ValueError, match="MadeUpErrorWithAKind is conflict, not invalid"):
        ErrorDecoder([], kinds={"MadeUpErrorWithAKind": ErrorKind.INVALID})
