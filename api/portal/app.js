// The portal's shell: sign-in, the navigation of the caller's roles, the operations in flight, the language.
import { actSentence } from "./acts.js";
import { ApiProblem, dropRules, follow, get, request, rulesKnown, session, startRules, takeRules } from "./api.js";
import { fill, h } from "./dom.js";
import { explain, language, roleName, setLanguage, t } from "./i18n.js";
import { currentSigner, forget, hasInjected, openInjected, openKeystore, safeApproval } from "./wallet.js";
import { VIEWS as REGULATOR_VIEWS } from "./regulator.js";
import { VIEWS as STORY_VIEWS } from "./views.js";
import { VIEWS as WAREHOUSE_VIEWS } from "./warehouse.js";

const VIEWS = { ...STORY_VIEWS, ...REGULATOR_VIEWS, ...WAREHOUSE_VIEWS };

const main = document.getElementById("view");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
const activity = document.getElementById("activity");

/** The signed-in participant (GET /participants/me), or null. */
let me = null;

const NAV = [
  ["home", "nav.home", null],
  ["invoices", "nav.invoices", ["supplier", "core-firm", "financier", "operator", "regulator"]],
  ["receivables", "nav.receivables", ["supplier", "core-firm", "financier", "operator", "regulator"]],
  ["financing", "nav.financing", ["supplier", "financier", "operator", "regulator"]],
  ["portfolio", "nav.portfolio", ["financier", "supplier"]],
  ["receipts", "nav.receipts", ["warehouse", "supplier", "core-firm", "financier", "operator", "regulator"]],
  ["pledges", "nav.pledges", ["supplier", "core-firm", "financier", "operator", "regulator"]],
  ["obligations", "nav.obligations", ["core-firm"]],
  ["participants", "nav.participants", ["operator", "regulator"]],
  ["cash", "nav.cash", ["settlement-agent"]],
  ["approvals", "nav.approvals", "self-custody"],
  ["reports", "nav.reports", ["regulator", "operator"]],
  ["freezes", "nav.freezes", ["regulator", "operator"]],
  ["audit", "nav.audit", ["regulator", "operator"]],
  ["events", "nav.events", ["regulator", "operator"]],
];

function allowed(roles) {
  if (roles === "self-custody") return Boolean(me && me.custody === "self");
  return !roles || (me && me.roles.some((role) => roles.includes(role)));
}

function renderChrome() {
  document.title = t("app.title");
  document.getElementById("brand").textContent = t("app.title");
  const switcher = document.getElementById("lang");
  switcher.textContent = t("lang.switch");
  switcher.lang = language() === "en" ? "zh-CN" : "en";
  if (!me) {
    fill(nav);
    fill(who);
    return;
  }
  const page = currentPage();
  fill(nav, h("ul", {}, NAV.filter(([, , roles]) => allowed(roles)).map(([name, label]) =>
    h("li", {}, h("a", { href: `#/${name}`, "aria-current": page === name ? "page" : null }, t(label))))));
  fill(who,
    h("span", { class: "who-name" }, t("signin.as", { name: me.name, roles: me.roles.map(roleName).join("、") })),
    h("button", { type: "button", class: "link", onclick: signOut }, t("signin.out")));
}

function currentPage() {
  return (location.hash.replace(/^#\/?/, "").split("?")[0] || "home");
}

/** How many times a page was asked for: only the latest request's page is shown. */
let drawn = 0;

async function render() {
  renderChrome();
  if (!me) {
    fill(main, signInView());
    return;
  }
  const page = currentPage();
  const view = VIEWS[page] ?? VIEWS.home;
  const drawing = ++drawn;
  fill(main, h("p", { class: "loading" }, t("loading")));
  let content;
  try {
    // The chain's clock and rules, read again with each page. The first page waits for them (it may draw a due
    // date or a past-due mark); later ones are drawn with the last reading while the new one comes.
    const reading = takeRules();
    if (!rulesKnown()) await reading;
    content = await view(context);
    await reading;
  } catch (error) {
    content = h("p", { class: "error", role: "alert" }, describe(error));
  }
  if (drawing !== drawn) return; // a later page (or the same, drawn again) replaced this one meanwhile
  fill(main, content);
  main.focus({ preventScroll: true });
}

function describe(error) {
  if (error instanceof ApiProblem) {
    if (error.problem.status === 0) return t("error.network", { detail: error.problem.detail });
    return explain(error.problem);
  }
  return t("error.generic", { detail: error.message });
}

// -- operations ---------------------------------------------------------------------------------------------

/** Send a state-changing request and show it until its block confirms it (or the contracts refuse it). An act
 * of a self-custody participant comes back as 428 with the act in words: it is shown, signed here, and relayed
 * through POST /acts. Answers the final OperationView, or null when nothing went through. */
async function act(method, path, body, label, asked = null) {
  const item = h("li", { class: "op", "data-status": "pending" }, h("strong", {}, label), " ", h("span", { class: "op-status" }, t("op.pending")));
  activity.prepend(item);
  const status = item.querySelector(".op-status");
  const settle = (state, text) => {
    item.dataset.status = state;
    status.textContent = text;
  };
  try {
    let answer = asked ? { status: 428, body: asked } : await request(method, path, { body });
    if (answer.status === 428) {
      const signed = await signAct(answer.body);
      if (!signed) {
        item.remove();
        return null;
      }
      const { approval, ...act } = signed;
      answer = await request("POST", approval ? "/acts/approvals" : "/acts", { body: act });
      if (approval && answer.status === 200 && !answer.body.operation_id) {
        settle("awaiting", t("op.awaiting", { signed: answer.body.signed_by.length, threshold: answer.body.threshold }));
        return null;
      }
    }
    if (answer.body && answer.body.api_key) item.dataset.apiKey = answer.body.api_key;
    const operationId = answer.body.operation_id;
    const final = answer.status === 200 || !operationId ? answer.body : await follow(operationId, (view) => {
      if (view.status !== "confirmed") settle("pending", t("op.pending"));
    });
    if (final.error) {
      settle("refused", t("op.refused", { reason: explain(final.error) }));
      item.setAttribute("role", "alert");
      return null;
    }
    settle("confirmed", t("op.confirmed", { block: final.block_number ?? "-" }));
    return { ...final, answer: answer.body };
  } catch (error) {
    settle("refused", t("op.refused", { reason: describe(error) }));
    item.setAttribute("role", "alert");
    return null;
  }
}

/** Show the act to sign in words and figures, made here from the typed data itself; sign it with the
 * participant's own key, or, for a contract account (a Safe), with one of its owners' keys as that owner's
 * approval. An act type the page cannot put in words is not signed. */
function signAct(required) {
  return new Promise((resolve) => {
    const sentence = actSentence(required.typed_data);
    const signer = sentence ? currentSigner() : null;
    const account = String(required.typed_data.message.account);
    const asOwner = signer && signer.address.toLowerCase() !== account.toLowerCase();
    const refusal = h("p", { class: "error", role: "alert", hidden: true });
    const dialog = h("dialog", { class: "sign", "aria-labelledby": "sign-title" },
      h("h2", { id: "sign-title" }, t("op.sign")),
      h("p", { class: "sentence" }, sentence ?? required.sentence),
      !sentence ? h("p", { class: "error", role: "alert" }, t("op.unknownAct")) : signer
        ? h("p", { class: "hint" }, asOwner
          ? t("op.approvedBy", { owner: signer.address, account })
          : t("op.signedBy", { account: signer.address }))
        : h("p", { class: "error", role: "alert" }, t("op.noWallet")),
      h("details", {}, h("summary", {}, "EIP-712"), h("pre", {}, JSON.stringify(required.typed_data, (_k, v) => (typeof v === "bigint" ? v.toString() : v), 2))),
      refusal,
      h("div", { class: "buttons" },
        signer ? h("button", { type: "button", class: "primary", onclick: async (event) => {
          const button = event.currentTarget;
          button.disabled = true;
          refusal.hidden = true;
          let signature;
          try {
            signature = asOwner
              ? await safeApproval(required.typed_data, account)
              : await signer.signTypedData(required.typed_data);
          } catch (error) {
            // Declined in the wallet, or the key could not sign: said here, and the act stays open to sign or cancel.
            refusal.hidden = false;
            refusal.textContent = t("op.notSigned", { reason: error?.code === 4001 ? t("op.declined") : (error?.message ?? String(error)) });
            button.disabled = false;
            return;
          }
          dialog.close();
          dialog.remove();
          resolve({ typed_data: required.typed_data, signature, approval: Boolean(asOwner) });
        } }, asOwner ? t("op.approveButton") : t("op.signButton")) : null,
        h("button", { type: "button", onclick: () => {
          dialog.close();
          dialog.remove();
          resolve(null);
        } }, t("op.cancel"))));
    document.body.append(dialog);
    dialog.showModal();
  });
}

// -- sign-in ------------------------------------------------------------------------------------------------

function signInView() {
  const message = h("p", { class: "error", role: "alert", hidden: true });
  const fail = (error) => {
    message.hidden = false;
    message.textContent = t("signin.failed", { reason: describe(error) });
  };
  const byKey = h("form", { class: "card", onsubmit: async (event) => {
    event.preventDefault();
    const key = byKey.querySelector("#api-key").value.trim();
    try {
      await signIn(key);
    } catch (error) {
      fail(error);
    }
  } },
  h("h2", {}, t("signin.title")),
  h("div", { class: "field" },
    h("label", { for: "api-key" }, t("signin.apiKey")),
    h("input", { id: "api-key", type: "password", autocomplete: "off", required: true }),
    h("small", { class: "hint" }, t("signin.apiKeyHint"))),
  h("button", { type: "submit", class: "primary" }, t("signin.submit")));

  const byKeystore = h("form", { class: "card", onsubmit: async (event) => {
    event.preventDefault();
    const file = byKeystore.querySelector("#keystore").files[0];
    const password = byKeystore.querySelector("#keystore-password").value;
    try {
      const signer = await openKeystore(await file.text(), password);
      await signInWith(signer);
    } catch (error) {
      forget();
      fail(error);
    }
  } },
  h("h2", {}, t("signin.keystore")),
  h("div", { class: "field" },
    h("label", { for: "keystore" }, t("signin.keystore")),
    h("input", { id: "keystore", type: "file", accept: ".json,application/json", required: true })),
  h("div", { class: "field" },
    h("label", { for: "keystore-password" }, t("signin.password")),
    h("input", { id: "keystore-password", type: "password", autocomplete: "off", required: true }),
    h("small", { class: "hint" }, t("signin.keystoreHint"))),
  h("button", { type: "submit", class: "primary" }, t("signin.keystoreSubmit")),
  hasInjected() ? h("button", { type: "button", onclick: async () => {
    try {
      await signInWith(await openInjected());
    } catch (error) {
      forget();
      fail(error);
    }
  } }, t("signin.wallet")) : null);
  return h("section", { class: "signin" }, message, byKey, byKeystore);
}

async function signIn(credential) {
  const answer = await request("GET", "/participants/me", { credential });
  session.credential = credential;
  me = answer.body;
  if (location.hash === "#/home") await render();
  else location.hash = "#/home"; // the hashchange draws the page, once
}

/** Sign in with the participant's own key: sign the service's single-use challenge (EIP-191). */
async function signInWith(signer) {
  const challenge = await request("POST", "/auth/challenge", { body: { address: signer.address }, credential: null });
  const signature = await signer.signMessage(challenge.body.message);
  const token = await request("POST", "/auth/token", {
    body: { address: signer.address, nonce: challenge.body.nonce, signature }, credential: null,
  });
  await signIn(token.body.access_token);
}

function signOut() {
  session.credential = null;
  forget();
  me = null;
  fill(activity);
  location.hash = "";
  render();
}

/** Open the participant's own signing key (or a Safe owner's) in this page without signing in again. */
async function openKey(text, password) {
  await openKeystore(text, password);
  renderChrome();
}

const context = {
  get me() {
    return me;
  },
  act,
  approve: (typedData, label) => act(null, null, null, label, { typed_data: typedData }),
  openKey,
  get signer() {
    return currentSigner();
  },
  describe,
  refresh: () => render(),
};

document.getElementById("lang").addEventListener("click", () => {
  setLanguage(language() === "en" ? "zh-CN" : "en");
  render();
});
window.addEventListener("hashchange", render);

async function start() {
  setLanguage(language());
  if (session.credential) {
    startRules(); // beside /participants/me: the first page needs both
    try {
      me = await get("/participants/me");
    } catch {
      session.credential = null;
      dropRules();
    }
  }
  await render();
  document.body.dataset.ready = "true";
}

start();
