"""The first regulator a deployment names (``SCF_REGULATOR_ADDRESS``): the regulator role is outside the
operator's power, so the deployment is the only place the operator's side names one."""

from __future__ import annotations

import pytest
from eth_account import Account

from ledger.deployment import RegulatorMissing, dev_regulator, regulator_account
from ledger.node import LOCAL_CHAIN_ID

PRODUCTION_CHAIN = 4242


def test_the_first_regulator_is_required_off_the_local_chain() -> None:
    operator = Account.create().address
    with pytest.raises(RegulatorMissing, match="SCF_REGULATOR_ADDRESS is required on chain 4242"):
        regulator_account(None, PRODUCTION_CHAIN, operator)
    named = Account.create().address
    first = regulator_account(named, PRODUCTION_CHAIN, operator)
    assert (first.address, first.hosted) == (named, None)  # the service holds no key of a named regulator


def test_the_local_chain_hosts_anvils_dev_regulator_unless_one_is_named() -> None:
    operator = Account.create().address
    first = regulator_account(None, LOCAL_CHAIN_ID, operator)
    assert first.hosted is not None and first.address == first.hosted.address == dev_regulator().address
    named = Account.create().address
    assert regulator_account(named, LOCAL_CHAIN_ID, operator).hosted is None


@pytest.mark.parametrize("chain_id", [LOCAL_CHAIN_ID, PRODUCTION_CHAIN])
def test_the_first_regulator_is_never_the_operator_nor_a_malformed_address(chain_id: int) -> None:
    operator = Account.create().address
    with pytest.raises(RegulatorMissing, match="is the operator's account"):
        regulator_account(operator.lower(), chain_id, operator)
    with pytest.raises(RegulatorMissing, match="not an account address"):
        regulator_account("0x1234", chain_id, operator)
