""".env.example lists every setting of ledger/settings.py (a setting it does not list is undocumented)."""

from __future__ import annotations

import re

from ledger.settings import PROJECT_ROOT, Settings, env_name


def test_env_example_lists_every_setting() -> None:
    text = (PROJECT_ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^# (SCF_[A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert listed == {env_name(name) for name in Settings.model_fields}
