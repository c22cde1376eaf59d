"""Administration from the service's machine, with the service's own settings and database: what ``scf api-key
reissue`` and ``scf secrets rotate`` do. Both may run while the service runs, and each is recorded in the audit
log (method ``CLI``) as the operator's act.

- :func:`reissue_operator_key`: a new API key for the operator (the account of ``SCF_OPERATOR_KEY``), every
  earlier one revoked at once; for an operator key that was lost, or leaked. The key is shown once.
- :func:`reencrypt_under_current_secret`: after the master secret changed (the new one in
  ``SCF_MASTER_SECRET``, the old one in ``SCF_PREVIOUS_MASTER_SECRETS``, and the service restarted with both),
  every hosted key file, every document and every webhook signing secret is encrypted again under the new one,
  then checked: nothing is left that needs the old one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from api.audit_log import AuditEntry, AuditLog
from api.service import reissue_api_key
from api.store import ParticipantRecord
from api.webhooks import reseal_webhook_secrets, webhook_secrets_not_under
from ledger.db import DatabaseUnavailable, make_engine, make_sessionmaker, redact_database_url
from ledger.deployment import operator_account
from ledger.documents import documents_not_under, rotate_document_keys
from ledger.keystore import Keystore
from ledger.migrations import ensure_sqlite_folder, upgrade
from ledger.secrets import master_secrets
from ledger.settings import Settings


class AdminError(Exception):
    """The command cannot do its work; the message says why and what to do."""


def open_database(settings: Settings) -> sessionmaker[Session]:
    """Sessions on the service's database, migrated to this version's schema (as the service does at start)."""
    url = settings.resolved_database_url
    try:
        ensure_sqlite_folder(url)
        upgrade(url, secrets=master_secrets(settings))
        return make_sessionmaker(make_engine(url))
    except Exception as exc:
        raise DatabaseUnavailable(url, exc) from exc


def _record(sessions: sessionmaker[Session], actor: str, command: str, status: int = 200) -> None:
    AuditLog(sessions).append(
        AuditEntry(
            actor=actor,
            method="CLI",
            route=command,
            path=command,
            operation_id=None,
            body_sha256=None,
            status_code=status,
            outcome="ok",
        )
    )


# -- the operator's API key ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReissuedKey:
    operator: str
    api_key: str
    revoked: int


def reissue_operator_key(settings: Settings) -> ReissuedKey:
    """Revoke every API key of the operator and issue a new one (the service must have started once)."""
    operator = str(operator_account(settings.operator_key, settings.chain_id).address)
    sessions = open_database(settings)
    with sessions() as session, session.begin():
        if session.get(ParticipantRecord, operator) is None:
            raise AdminError(
                f"the operator {operator} (SCF_OPERATOR_KEY) is not in the database "
                f"{redact_database_url(settings.resolved_database_url)}: start the service once (`scf serve`), which "
                "creates it and prints its first key"
            )
        key, revoked = reissue_api_key(session, operator)
    _record(sessions, operator, "scf api-key reissue", 201)
    return ReissuedKey(operator, key, revoked)


# -- re-encrypting under the current master secret ----------------------------------------------------------


@dataclass(frozen=True)
class Reencryption:
    secret_id: str
    """The current master secret's id: everything is now under it."""
    keys: int
    keys_rewritten: int
    documents_rewritten: int
    keys_left: list[str]
    """Key files still under another secret afterwards (none unless the command was interrupted)."""
    documents_left: int
    webhook_secrets_rewritten: int = 0
    webhook_secrets_left: int = 0


def reencrypt_under_current_secret(
    settings: Settings,
    *,
    on_keys: Callable[[int], None] = lambda total: None,
    on_key: Callable[[str, bool], None] = lambda address, rewritten: None,
    on_documents: Callable[[int], None] = lambda total: None,
    on_document_batch: Callable[[int], None] = lambda count: None,
    batch: int = 8,
) -> Reencryption:
    """Encrypt every hosted key, every document and every webhook signing secret again under
    ``SCF_MASTER_SECRET``, reading each with the secret it names (current or one of
    ``SCF_PREVIOUS_MASTER_SECRETS``); then count what is left under another secret (nothing, unless interrupted:
    running it again resumes)."""
    secrets = master_secrets(settings)
    operator = str(operator_account(settings.operator_key, settings.chain_id).address)
    sessions = open_database(settings)
    keystore = Keystore(settings.data_dir / "keystore", secrets)
    addresses = keystore.addresses()
    on_keys(len(addresses))
    rewritten = 0
    for address in addresses:
        changed = keystore.reencrypt(address)
        rewritten += changed
        on_key(address, changed)
    on_documents(documents_not_under(sessions, secrets))
    documents = rotate_document_keys(sessions, secrets, batch=batch, progress=on_document_batch)
    webhook_secrets = reseal_webhook_secrets(sessions, secrets)
    left = [a for a in keystore.addresses() if keystore.secret_id_of(a) != secrets.current.id]
    _record(sessions, operator, "scf secrets rotate")
    return Reencryption(
        secrets.current.id,
        len(addresses),
        rewritten,
        documents,
        left,
        documents_not_under(sessions, secrets),
        webhook_secrets,
        webhook_secrets_not_under(sessions, secrets),
    )
