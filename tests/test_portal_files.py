"""The portal's files, without a browser: every signed act has its sentence in both languages, naming only the
act's own fields; the page and its scripts are served from this origin under the portal's CSP, and nothing else
of the folder or of node_modules is."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import portal, problems
from api.edge import PORTAL_CSP, EdgeMiddleware
from ledger.acts import ACT_TYPES
from ledger.settings import Settings

ACTS_JS = (portal.PORTAL_DIR / "acts.js").read_text()
SENTENCE = re.compile(r'^  (\w+): \["(.*?)", "(.*?)"\],$', re.MULTILINE)


def test_every_act_type_has_a_sentence_in_chinese_and_english_naming_only_its_own_fields() -> None:
    sentences = {name: (zh, en) for name, zh, en in SENTENCE.findall(ACTS_JS)}
    assert set(sentences) == set(ACT_TYPES)
    for name, (zh, en) in sentences.items():
        fields = {field for field, _ in ACT_TYPES[name].fields}
        for text in (zh, en):
            named = set(re.findall(r"\{(\w+)\}", text))
            assert named <= fields, f"{name}: {named - fields} are not fields of the act"
        # what the act moves is in the words: every amount, rate, date and account field
        for field, kind in ACT_TYPES[name].fields:
            weighty = kind == "address" or field in {
                "amount",
                "value",
                "grant",
                "fee",
                "principal",
                "valuation",
                "dueDate",
            }
            if weighty and field != "account":
                assert f"{{{field}}}" in zh and f"{{{field}}}" in en, f"{name} does not say its {field}"


def test_the_portal_is_served_under_its_own_policy_and_serves_only_its_files() -> None:
    app = FastAPI()
    problems.install(app)
    portal.install(app)
    app.add_middleware(EdgeMiddleware, settings_of=Settings)
    with TestClient(app) as http:
        page = http.get("/")
        assert page.status_code == 200 and 'src="/portal/app.js"' in page.text
        assert page.headers["content-security-policy"] == PORTAL_CSP
        assert "'unsafe-eval'" not in PORTAL_CSP and "'unsafe-inline'" not in PORTAL_CSP
        for name in portal.FILES:
            answer = http.get(f"/portal/{name}")
            assert answer.status_code == 200, name
            assert answer.headers["content-type"].startswith(portal.FILES[name].split(";")[0])
        assert http.get("/portal/vendor/ethers.js").status_code == 200
        assert http.get("/portal/index.html").status_code == 404
        assert http.get("/portal/..%2Fportal.py").status_code == 404
        assert http.get("/portal/%2E%2E/app.py").status_code == 404
