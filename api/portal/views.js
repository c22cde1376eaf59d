// The portal's pages, one function per page: each reads what it shows from the API and answers an element.
// ``ctx`` gives the signed-in participant (ctx.me), ``ctx.act`` to send an operation and follow it, and
// ``ctx.refresh`` to draw the page again once an operation is final.
import { actSentence } from "./acts.js";
import { chainNow, get, getAll, request, rule } from "./api.js";
import { field, h, table, valueOf } from "./dom.js";
import { fillFromInvoiceFile, invoiceFileProblem } from "./einvoice.js";
import { creditCodeValid } from "./identifiers.js";
import { roleName, stateName, t } from "./i18n.js";
import { fen, formatBps, formatYuan, parsePercent, parseYuan } from "./money.js";

export const has = (ctx, ...roles) => ctx.me.roles.some((role) => roles.includes(role));
export const same = (a, b) => typeof a === "string" && typeof b === "string" && a.toLowerCase() === b.toLowerCase();
export const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
export const DAY = 86400;

/** A date of the API (unix seconds, UTC midnight for due dates) as YYYY-MM-DD. */
export function day(seconds) {
  if (seconds === null || seconds === undefined) return "";
  return new Date(Number(seconds) * 1000).toISOString().slice(0, 10);
}

export function short(address) {
  return address ? `${address.slice(0, 6)}…${address.slice(-4)}` : "";
}

export function account(address, name = null) {
  return h("span", { class: "account", title: address }, name ?? short(address));
}

export function money(value) {
  return h("span", { class: "money" }, formatYuan(value));
}

export function state(value) {
  return h("span", { class: `state state-${value}` }, stateName(value));
}

/** A form whose submit validates with ``check`` (answers an error text or null) and then runs ``send``. */
export function form(title, fields, submitLabel, check, send) {
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const element = h("form", { class: "card", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    const problem = check(element);
    error.hidden = !problem;
    error.textContent = problem ?? "";
    if (problem) return;
    const button = element.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await send(element);
    } finally {
      button.disabled = false;
    }
  } }, h("h2", {}, title), fields, error, h("button", { type: "submit", class: "primary" }, submitLabel));
  return element;
}

export function amountOf(element, name) {
  const value = parseYuan(valueOf(element, name));
  return value !== null && value > 0n ? value : null;
}

/** A list's filters (state, and where ``extra`` asks: counterparty, due dates) and CSV export (the API's own
 * ``format=csv`` with the same filters). Filters live in the page's address, so a filtered list can be kept. */
export function listBar(path, stateOptions, query, onFilter, extra = []) {
  const id = path.slice(1);
  const select = h("select", { id: `${id}-state`, name: "state" },
    h("option", { value: "" }, t("list.all")),
    stateOptions.map((value) => h("option", { value, selected: query.state === value }, stateName(value))));
  const inputs = {
    counterparty: h("input", { id: `${id}-counterparty`, name: "counterparty", value: query.counterparty ?? "", placeholder: "0x…", autocomplete: "off", size: 16 }),
    due_from: h("input", { id: `${id}-due-from`, name: "due_from", type: "date", value: query.due_from ?? "" }),
    due_to: h("input", { id: `${id}-due-to`, name: "due_to", type: "date", value: query.due_to ?? "" }),
  };
  const labels = { counterparty: "list.counterparty", due_from: "list.dueFrom", due_to: "list.dueTo" };
  const values = () => Object.fromEntries([["state", select.value], ...extra.map((name) => [name, inputs[name].value.trim()])]);
  const error = h("span", { class: "error", role: "alert" });
  return h("form", { class: "bar", onsubmit: (event) => {
    event.preventDefault();
    const chosen = values();
    if (chosen.counterparty && !ADDRESS.test(chosen.counterparty)) {
      error.textContent = `${t("list.counterparty")}: ${t("invalid.address")}`;
      return;
    }
    onFilter(chosen);
  } },
  h("label", { for: select.id }, t("list.state")), select,
  extra.map((name) => [h("label", { for: inputs[name].id }, t(labels[name])), inputs[name]]),
  h("button", { type: "submit" }, t("list.filter")),
  h("button", { type: "button", onclick: () => exportCsv(path, values()) }, t("list.export")), error);
}

/** The page's list, one page from the API (cursor paging), with a link to the next. */
export async function onePage(path, query, page) {
  const answer = await get(path, { ...query, size: PAGE_SIZE });
  const next = answer.next ? new URLSearchParams(answer.next.split("?")[1]).get("after") : null;
  const pager = h("nav", { class: "pager", "aria-label": t("list.pages") },
    query.after ? h("button", { type: "button", onclick: () => history.back() }, t("list.prev")) : null,
    next ? h("button", { type: "button", onclick: () => withQuery(page, { ...query, after: next }) }, t("list.next")) : null);
  return { items: answer.items, pager };
}

export const PAGE_SIZE = 50;

export async function exportCsv(path, query) {
  const answer = await request("GET", path, { query: { ...query, format: "csv" }, raw: true });
  const link = h("a", { href: URL.createObjectURL(answer.body), download: `${path.slice(1)}.csv` });
  document.body.append(link);
  link.click();
  link.remove();
}

export function queryOf() {
  const [, search = ""] = location.hash.split("?");
  return Object.fromEntries(new URLSearchParams(search));
}

export function withQuery(page, query) {
  const search = new URLSearchParams(Object.entries(query).filter(([, v]) => v)).toString();
  location.hash = `#/${page}${search ? `?${search}` : ""}`;
}

/** A bar chart in SVG of [label, BigInt fen] pairs (scaled by BigInt arithmetic, no float on the amounts). */
export function barChart(title, rows) {
  if (!rows.length) return null;
  const width = 560, barHeight = 22, gap = 6, labelWidth = 150;
  const max = rows.reduce((m, [, value]) => (value > m ? value : m), 1n);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${rows.length * (barHeight + gap)}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", title);
  svg.setAttribute("class", "chart");
  rows.forEach(([label, value], index) => {
    const y = index * (barHeight + gap);
    const length = Number((value * BigInt(width - labelWidth - 130)) / max);
    const text = document.createElementNS(ns, "text");
    text.setAttribute("x", "0");
    text.setAttribute("y", String(y + 16));
    text.textContent = label;
    const bar = document.createElementNS(ns, "rect");
    bar.setAttribute("x", String(labelWidth));
    bar.setAttribute("y", String(y));
    bar.setAttribute("width", String(Math.max(length, 1)));
    bar.setAttribute("height", String(barHeight));
    const amount = document.createElementNS(ns, "text");
    amount.setAttribute("x", String(labelWidth + Math.max(length, 1) + 6));
    amount.setAttribute("y", String(y + 16));
    amount.textContent = formatYuan(value);
    svg.append(text, bar, amount);
  });
  return h("figure", {}, h("figcaption", {}, title), svg);
}

// -- home ---------------------------------------------------------------------------------------------------

async function home(ctx) {
  const { me } = ctx;
  const balance = await get("/balances/me");
  return h("section", {},
    h("h1", {}, t("home.welcome", { name: me.name })),
    h("dl", { class: "facts" },
      h("dt", {}, t("home.account")), h("dd", {}, h("code", {}, me.id)),
      h("dt", {}, t("home.roles")), h("dd", {}, me.roles.map(roleName).join("、")),
      h("dt", {}, t("home.custody")), h("dd", {}, me.custody === "self" ? t("signin.selfCustody") : t("signin.hosted")),
      h("dt", {}, t("home.balance")), h("dd", { id: "balance" }, money(balance.balance))),
    me.custody === "self" ? signingKey(ctx) : null);
}

/** A self-custody participant (or a Safe's owner) opens its signing key in the page: the key stays here. */
function signingKey(ctx) {
  if (ctx.signer) return h("p", { class: "card", role: "status", id: "signing-key" }, t("key.opened", { address: ctx.signer.address }));
  return form(t("key.title"), [
    field(t("key.file"), { name: "keystore", type: "file", accept: ".json,application/json" }),
    field(t("key.password"), { name: "password", type: "password", autocomplete: "off" }),
  ], t("key.open"), (element) => (element.querySelector("[name=keystore]").files.length ? null : t("invalid.required")),
  async (element) => {
    try {
      await ctx.openKey(await element.querySelector("[name=keystore]").files[0].text(), element.querySelector("[name=password]").value);
      ctx.refresh();
    } catch (error) {
      alert(ctx.describe(error));
    }
  });
}

// -- maker/checker ------------------------------------------------------------------------------------------

async function approvals(ctx) {
  const { items } = await get("/acts/approvals");
  const section = h("section", {}, h("h1", {}, t("appr.title")), signingKey(ctx));
  const statusText = { "awaiting-signatures": "appr.awaiting", relayed: "appr.relayed", expired: "appr.expired" };
  const columns = [
    [t("appr.act"), (row) => h("span", { class: "sentence" }, actSentence(row.typed_data) ?? row.sentence)],
    [t("appr.status"), (row) => `${t(statusText[row.status])} · ${t("appr.signed", { signed: row.signed_by.length, threshold: row.threshold })}`],
    [t("actions"), (row) => (row.status === "awaiting-signatures" && ctx.signer && !row.signed_by.some((owner) => same(owner, ctx.signer.address))
      ? h("button", { type: "button", class: "primary", "data-digest": row.digest, onclick: async () => {
        if (await ctx.approve(row.typed_data, t("appr.approve"))) ctx.refresh();
      } }, t("appr.approve"))
      : null)],
  ];
  section.append(table(t("appr.title"), columns, items, t("appr.none")));
  return section;
}

// -- invoices -----------------------------------------------------------------------------------------------

const INVOICE_STATES = ["registered", "confirmed", "rejected", "settled", "defaulted"];

async function invoices(ctx) {
  const query = queryOf();
  const { items, pager } = await onePage("/invoices", query, "invoices");
  const section = h("section", {}, h("h1", {}, t("invoice.list")));
  if (has(ctx, "supplier")) section.append(registerInvoice(ctx));
  section.append(listBar("/invoices", INVOICE_STATES, query, (chosen) => withQuery("invoices", chosen),
    ["counterparty", "due_from", "due_to"]));
  const columns = [
    [t("invoice.id"), (row) => `#${row.id}`],
    [t("invoice.number"), (row) => row.invoice_number ?? "-"],
    [t("invoice.seller"), (row) => account(row.seller)],
    [t("invoice.buyer"), (row) => account(row.buyer)],
    [t("invoice.amount"), (row) => money(row.amount)],
    [t("invoice.due"), (row) => day(row.due_date)],
    [t("list.state"), (row) => state(row.state)],
    [t("actions"), (row) => invoiceActions(ctx, row)],
  ];
  section.append(table(t("invoice.list"), columns, items, t("invoice.none")), pager);
  return section;
}

/** An invoice as the page names it: its id, and its number where this gateway registered it. */
const invoiceName = (row) => (row.invoice_number ? `#${row.id} (${row.invoice_number})` : `#${row.id}`);

function invoiceActions(ctx, row) {
  const buttons = [];
  if (row.document_hash && !/^0x0+$/.test(row.document_hash)) {
    buttons.push(h("button", { type: "button", class: "link", onclick: () => openDocument(ctx, row.document_hash) }, t("invoice.document")));
  }
  if (row.state === "registered" && same(row.buyer, ctx.me.id)) {
    buttons.push(h("button", { type: "button", class: "primary", "data-invoice": row.id, onclick: async () => {
      if (await ctx.act("POST", `/invoices/${row.id}/confirm`, undefined, `${t("invoice.confirm")} ${invoiceName(row)}`)) ctx.refresh();
    } }, t("invoice.confirm")));
    buttons.push(h("button", { type: "button", onclick: async () => {
      const reason = prompt(t("invoice.rejectReason"));
      if (reason && (await ctx.act("POST", `/invoices/${row.id}/reject`, { reason }, `${t("invoice.reject")} ${invoiceName(row)}`))) ctx.refresh();
    } }, t("invoice.reject")));
  }
  return buttons;
}

export async function openDocument(ctx, hash) {
  try {
    const answer = await request("GET", `/documents/${hash.replace(/^0x/, "")}`, { raw: true });
    window.open(URL.createObjectURL(answer.body), "_blank", "noopener");
  } catch (error) {
    alert(ctx.describe(error));
  }
}

function registerInvoice(ctx) {
  const tomorrow = day(chainNow() + DAY);
  const tenor = rule("max_tenor") ?? 365 * DAY;
  const element = form(t("invoice.register"), [
    field(t("invoice.buyer"), { name: "buyer", required: true, autocomplete: "off", placeholder: "0x…" }),
    field(t("invoice.number"), { name: "invoice_number", required: true, inputmode: "numeric", maxlength: 20 }, t("invoice.numberHint")),
    field(t("invoice.amount"), { name: "amount", required: true, inputmode: "decimal", placeholder: "1,000,000.00" }),
    field(t("invoice.dueDate"), { name: "due_date", type: "date", required: true, min: tomorrow }),
    field(t("invoice.file"), { name: "file", type: "file", accept: ".pdf,.ofd,.xml,application/pdf,application/ofd,application/xml" }),
  ], t("invoice.submit"), (element) => {
    const fromFile = invoiceFileProblem(element);
    if (fromFile) return fromFile;
    if (!ADDRESS.test(valueOf(element, "buyer"))) return `${t("invoice.buyer")}: ${t("invalid.address")}`;
    if (!/^\d{20}$/.test(valueOf(element, "invoice_number"))) return t("invalid.invoiceNumber");
    if (amountOf(element, "amount") === null) return `${t("invoice.amount")}: ${t("invalid.amount")}`;
    const due = Date.parse(valueOf(element, "due_date")) / 1000;
    if (!(due > chainNow() && due <= chainNow() + tenor)) return t("invalid.dueDate", { days: Math.floor(tenor / DAY) });
    return null;
  }, async (element) => {
    const body = {
      buyer: valueOf(element, "buyer"),
      amount: amountOf(element, "amount"),
      invoice_number: valueOf(element, "invoice_number"),
      due_date: valueOf(element, "due_date"),
    };
    const file = element.querySelector("[name=file]").files[0];
    if (file) {
      const upload = new FormData();
      upload.append("file", file);
      upload.append("parties", body.buyer);
      const stored = await request("POST", "/documents", { body: upload });
      body.document_sha256 = stored.body.sha256;
    }
    if (await ctx.act("POST", "/invoices", body, `${t("invoice.register")} ${body.invoice_number}`)) ctx.refresh();
  });
  fillFromInvoiceFile(ctx, element);
  return element;
}

// -- receivable pieces --------------------------------------------------------------------------------------

async function receivables(ctx) {
  const { items, pager } = await onePage("/receivables", queryOf(), "receivables");
  const live = items.filter((piece) => !piece.burnt);
  const section = h("section", {}, h("h1", {}, t("piece.list")),
    h("div", { class: "bar" }, h("button", { type: "button", onclick: () => exportCsv("/receivables", {}) }, t("list.export"))));
  const columns = [
    [t("piece.id"), (row) => h("span", { style: null, class: `depth-${Math.min(row.depth, 6)}` }, `#${row.id}`)],
    [t("piece.lineage"), (row) => (row.parent_id === null ? t("piece.root") : t("piece.from", { id: row.parent_id }))],
    [t("piece.owner"), (row) => account(row.owner)],
    [t("piece.value"), (row) => money(row.value)],
    [t("actions"), (row) => (row.frozen ? state("frozen") : same(row.owner, ctx.me.id) ? pieceActions(ctx, row) : null)],
  ];
  section.append(table(t("piece.list"), columns, live, t("piece.none")), pager);
  return section;
}

function pieceActions(ctx, piece) {
  if (piece.open_request_id !== null) return h("span", { class: "hint" }, `${t("fin.id")} #${piece.open_request_id}`);
  const transfer = form(t("piece.transfer"), [
    field(t("piece.to"), { name: "to", autocomplete: "off", placeholder: "0x…" }),
    field(t("piece.amount"), { name: "amount", inputmode: "decimal" }),
  ], t("piece.send"), (element) => {
    if (!ADDRESS.test(valueOf(element, "to"))) return `${t("piece.to")}: ${t("invalid.address")}`;
    return amountOf(element, "amount") === null ? `${t("piece.amount")}: ${t("invalid.amount")}` : null;
  }, async (element) => {
    const body = { to: valueOf(element, "to"), amount: amountOf(element, "amount") };
    if (await ctx.act("POST", `/receivables/${piece.id}/transfers`, body, `${t("piece.transfer")} #${piece.id}`)) ctx.refresh();
  });
  const quoted = h("p", { class: "quote", role: "status", "aria-live": "polite", "data-quote": piece.id });
  // The most the supplier accepts, sent with the request and held on chain: an approval above it is refused.
  // Filled in from the quote it is shown (its rate on a 365-day basis, its fee); without published terms, the
  // supplier states its own.
  const finance = form(t("piece.finance"), [
    field(t("piece.financier"), { name: "financier", autocomplete: "off", placeholder: "0x…" }),
    field(t("piece.financeAmount"), { name: "amount", inputmode: "decimal" }),
    quoted,
    field(t("fin.maxRate"), { name: "maxRate", inputmode: "decimal" }),
    field(t("fin.maxFee"), { name: "maxFee", inputmode: "decimal" }),
  ], t("piece.send"), (element) => {
    if (!ADDRESS.test(valueOf(element, "financier"))) return `${t("piece.financier")}: ${t("invalid.address")}`;
    if (amountOf(element, "amount") === null) return `${t("piece.financeAmount")}: ${t("invalid.amount")}`;
    if (parsePercent(valueOf(element, "maxRate")) === null) return `${t("fin.maxRate")}: ${t("invalid.rate")}`;
    return parseYuan(valueOf(element, "maxFee")) === null ? `${t("fin.maxFee")}: ${t("invalid.amount")}` : null;
  }, async (element) => {
    const body = {
      piece_id: Number(piece.id), amount: amountOf(element, "amount"), financier: valueOf(element, "financier"),
      max_discount_rate_bps: parsePercent(valueOf(element, "maxRate")), max_fee: parseYuan(valueOf(element, "maxFee")),
    };
    if (await ctx.act("POST", "/financing-requests", body, `${t("piece.finance")} #${piece.id}`)) ctx.refresh();
  });
  // The price before asking: the financier's standing terms for this obligor, as the contract would count them.
  const showQuote = async () => {
    const financier = valueOf(finance, "financier");
    const amount = amountOf(finance, "amount");
    if (!ADDRESS.test(financier) || amount === null) {
      quoted.textContent = "";
      return;
    }
    try {
      const q = await get("/financing-quote", { piece_id: piece.id, amount: amount.toString(), financier });
      // The contract compares rates on a 365-day basis: a 360-day rate is accepted at its equivalent, rounded up.
      const cap = q.day_count_basis === 360 ? Math.ceil((q.discount_rate_bps * 365) / 360) : q.discount_rate_bps;
      finance.querySelector("[name=maxRate]").value = percentText(cap);
      finance.querySelector("[name=maxFee]").value = yuanText(q.fee);
      quoted.textContent = t("fin.quoteBefore", {
        discount: formatYuan(q.discount), fee: formatYuan(q.fee), price: formatYuan(q.price),
        rate: formatBps(q.discount_rate_bps), basis: q.day_count_basis, days: q.days,
      });
    } catch (error) {
      quoted.textContent = error.problem?.type?.endsWith("no-offer") ? t("fin.noOffer") : ctx.describe(error);
    }
  };
  let pending = null;
  finance.addEventListener("input", (event) => {
    if (!["financier", "amount"].includes(event.target?.name)) return;
    clearTimeout(pending);
    pending = setTimeout(showQuote, 300);
  });
  const redeem = h("button", { type: "button", onclick: async () => {
    if (await ctx.act("POST", `/receivables/${piece.id}/redeem`, undefined, `${t("piece.redeem")} #${piece.id}`)) ctx.refresh();
  } }, t("piece.redeem"));
  return h("details", { class: "actions", "data-piece": piece.id }, h("summary", {}, t("actions")), transfer, finance, redeem);
}

/** Basis points as the percentage a rate field takes (``365`` → ``3.65``). */
function percentText(bps) {
  return `${Math.floor(bps / 100)}.${String(bps % 100).padStart(2, "0")}`;
}

/** Fen as the yuan an amount field takes (``10000`` → ``100.00``). */
function yuanText(value) {
  const fenValue = BigInt(value);
  return `${fenValue / 100n}.${String(fenValue % 100n).padStart(2, "0")}`;
}

// -- financing ----------------------------------------------------------------------------------------------

const REQUEST_STATES = ["requested", "approved", "funded", "declined", "cancelled"];

async function financing(ctx) {
  const query = queryOf();
  const { items, pager } = await onePage("/financing-requests", query, "financing");
  const section = h("section", {}, h("h1", {}, t("fin.list")));
  if (has(ctx, "financier", "operator")) section.append(creditLineForm(ctx));
  if (has(ctx, "financier")) section.append(offerForm(ctx));
  section.append(listBar("/financing-requests", REQUEST_STATES, query, (chosen) => withQuery("financing", chosen),
    ["counterparty"]));
  const columns = [
    [t("fin.id"), (row) => `#${row.id}`],
    [t("fin.piece"), (row) => `#${row.piece_id}`],
    [t("fin.holder"), (row) => account(row.holder)],
    [t("fin.financier"), (row) => account(row.financier)],
    [t("fin.obligor"), (row) => account(row.obligor, row.obligor_name)],
    [t("fin.tenor"), (row) => remaining(row.due_date)],
    [t("fin.amount"), (row) => money(row.amount)],
    [t("fin.price"), (row) => (row.price === null ? accepted(row) : h("span", { class: "quote" }, t("fin.quote", {
      discount: formatYuan(row.discount), fee: formatYuan(row.fee), price: formatYuan(row.price),
      rate: formatBps(row.discount_rate_bps), basis: row.day_count_basis,
    })))],
    [t("list.state"), (row) => state(row.state)],
    [t("actions"), (row) => requestActions(ctx, row)],
  ];
  section.append(table(t("fin.list"), columns, items, t("fin.none")), pager);
  return section;
}

/** What the holder accepted when it asked (its caps, held on chain), until the request is funded. */
function accepted(row) {
  if (row.max_discount_rate_bps === null || row.max_fee === null) return "";
  return h("span", { class: "hint", "data-accepted": row.id },
    t("fin.accepted", { rate: formatBps(row.max_discount_rate_bps), fee: formatYuan(row.max_fee) }));
}

/** Days from the chain's now to ``due`` (rounded up), with the date: what is left of a financing's tenor. */
function remaining(due) {
  const days = Math.ceil((Number(due) - chainNow()) / DAY);
  return days > 0 ? t("fin.days", { days, due: day(due) }) : t("fin.due", { due: day(due) });
}

const REGISTRATION_NUMBER = /^\d{20}$/;

/** The financier records the 中登网 registration of its funded financing or active pledge (`path`: its
 * `/registration` route); once recorded, the number and date are shown instead. */
export function registrationAction(ctx, row, path) {
  if (row.registration_number) {
    const date = new Date(Number(row.registered_at) * 1000).toISOString().slice(0, 10);
    return h("span", { class: "hint", "data-registration": row.id }, t("reg.recorded", { number: row.registration_number, date }));
  }
  const element = form(t("reg.record"), [
    field(t("reg.number"), { name: "number", inputmode: "numeric", autocomplete: "off" }),
    field(t("reg.date"), { name: "registered_on", type: "date" }),
  ], t("reg.record"), (element_) => {
    if (!REGISTRATION_NUMBER.test(valueOf(element_, "number"))) return t("reg.invalidNumber");
    return valueOf(element_, "registered_on") ? null : t("reg.invalidDate");
  }, async (element_) => {
    const body = { number: valueOf(element_, "number"), registered_on: valueOf(element_, "registered_on") };
    const answer = await ctx.act("POST", path, body, `${t("reg.record")} #${row.id}`);
    if (answer) ctx.refresh();
  });
  return h("details", { class: "actions", "data-registration": row.id }, h("summary", {}, t("reg.record")), element);
}

function requestActions(ctx, row) {
  const mine = same(row.financier, ctx.me.id);
  const label = (key) => `${t(key)} #${row.id}`;
  const done = (answer) => answer && ctx.refresh();
  if (row.state === "funded" && mine) return registrationAction(ctx, row, `/financing-requests/${row.id}/registration`);
  if (row.state === "requested" && mine) {
    const approve = form(t("fin.approve"), [
      field(t("fin.rate"), { name: "rate", inputmode: "decimal", placeholder: "3.65" }),
      field(t("fin.feeYuan"), { name: "fee", inputmode: "decimal", value: "0.00" }),
      field(t("fin.basis"), { name: "basis", options: [["365", "365"], ["360", "360"]] }),
      field(t("fin.review"), { name: "review", type: "file" }),
    ], t("fin.approve"), (element) => {
      if (parsePercent(valueOf(element, "rate")) === null) return t("invalid.rate");
      return parseYuan(valueOf(element, "fee")) === null ? `${t("fin.feeYuan")}: ${t("invalid.amount")}` : null;
    }, async (element) => {
      const body = {
        discount_rate_bps: parsePercent(valueOf(element, "rate")),
        fee: parseYuan(valueOf(element, "fee")),
        day_count_basis: Number(valueOf(element, "basis")),
      };
      // The credit review document goes to the document store (readable by the financier, the regulator and the
      // operator); its hash is recorded on chain with the approval.
      const review = element.querySelector("[name=review]").files[0];
      if (review) {
        const upload = new FormData();
        upload.append("file", review);
        const stored = await request("POST", "/documents", { body: upload });
        body.review = `0x${stored.body.sha256.replace(/^0x/, "")}`;
      }
      done(await ctx.act("POST", `/financing-requests/${row.id}/approve`, body, label("fin.approve")));
    });
    const decline = h("button", { type: "button", onclick: async () =>
      done(await ctx.act("POST", `/financing-requests/${row.id}/decline`, undefined, label("fin.decline"))) }, t("fin.decline"));
    return h("details", { class: "actions", "data-request": row.id }, h("summary", {}, t("actions")), approve, decline);
  }
  if (row.state === "approved" && mine) {
    return h("button", { type: "button", class: "primary", "data-request": row.id, onclick: async () =>
      done(await ctx.act("POST", `/financing-requests/${row.id}/fund`, undefined, label("fin.fund"))) }, t("fin.fund"));
  }
  if ((row.state === "requested" || row.state === "approved") && same(row.holder, ctx.me.id)) {
    return h("button", { type: "button", onclick: async () =>
      done(await ctx.act("POST", `/financing-requests/${row.id}/cancel`, undefined, label("fin.cancel"))) }, t("fin.cancel"));
  }
  return null;
}

/** A financier's standing terms (PUT /financing-offers): what suppliers are quoted before they ask. */
function offerForm(ctx) {
  const done = h("p", { role: "status", id: "offer-status" });
  const element = form(t("offer.title"), [
    field(t("offer.coreFirm"), { name: "core_firm", autocomplete: "off", placeholder: "0x…" }, t("offer.coreFirmHint")),
    field(t("fin.rate"), { name: "rate", inputmode: "decimal", placeholder: "3.65" }),
    field(t("fin.feeYuan"), { name: "fee", inputmode: "decimal", value: "0.00" }),
    field(t("fin.basis"), { name: "basis", options: [["365", "365"], ["360", "360"]] }),
    done,
  ], t("offer.publish"), (form_) => {
    const firm = valueOf(form_, "core_firm");
    if (firm && !ADDRESS.test(firm)) return `${t("offer.coreFirm")}: ${t("invalid.address")}`;
    if (parsePercent(valueOf(form_, "rate")) === null) return t("invalid.rate");
    return parseYuan(valueOf(form_, "fee")) === null ? `${t("fin.feeYuan")}: ${t("invalid.amount")}` : null;
  }, async (form_) => {
    const body = {
      core_firm: valueOf(form_, "core_firm") || null,
      discount_rate_bps: parsePercent(valueOf(form_, "rate")),
      fee: parseYuan(valueOf(form_, "fee")),
      day_count_basis: Number(valueOf(form_, "basis")),
    };
    try {
      const answer = await request("PUT", "/financing-offers", { body });
      done.textContent = t("offer.published", { rate: formatBps(answer.body.discount_rate_bps), fee: formatYuan(answer.body.fee) });
    } catch (error) {
      done.textContent = ctx.describe(error);
    }
  });
  return element;
}

function creditLineForm(ctx) {
  return form(t("credit.set"), [
    field(t("credit.coreFirm"), { name: "core_firm", autocomplete: "off", placeholder: "0x…" }),
    field(t("credit.amount"), { name: "limit", inputmode: "decimal" }),
  ], t("credit.set"), (element) => {
    if (!ADDRESS.test(valueOf(element, "core_firm"))) return `${t("credit.coreFirm")}: ${t("invalid.address")}`;
    return parseYuan(valueOf(element, "limit")) === null ? `${t("credit.amount")}: ${t("invalid.amount")}` : null;
  }, async (element) => {
    const body = { core_firm: valueOf(element, "core_firm"), limit: parseYuan(valueOf(element, "limit")) };
    if (await ctx.act("POST", "/credit-lines", body, t("credit.set"))) ctx.refresh();
  });
}

// -- a holder's portfolio ------------------------------------------------------------------------------------

async function portfolio(ctx) {
  const held = await get("/receivables/portfolio");
  const section = h("section", {}, h("h1", {}, t("port.title")),
    h("dl", { class: "facts", id: "portfolio-total" },
      h("dt", {}, t("port.pieces")), h("dd", {}, String(held.pieces)),
      h("dt", {}, t("port.value")), h("dd", {}, money(held.value))));
  const firmName = (line) => line.name ?? short(line.core_firm);
  section.append(barChart(t("port.byFirm"), held.by_core_firm.map((line) => [firmName(line), fen(line.value)])) ?? "");
  section.append(table(t("port.byFirm"), [
    [t("port.firm"), (line) => h("span", { title: line.core_firm }, firmName(line))],
    [t("port.pieces"), (line) => String(line.pieces)],
    [t("port.value"), (line) => money(line.value)],
  ], held.by_core_firm, t("piece.none")));
  section.append(barChart(t("port.byMonth"), held.by_month.map((line) => [line.month, fen(line.value)])) ?? "");
  section.append(table(t("port.byMonth"), [
    [t("port.month"), (line) => line.month],
    [t("port.pieces"), (line) => String(line.pieces)],
    [t("port.value"), (line) => money(line.value)],
  ], held.by_month, t("piece.none")));
  return section;
}

// -- a core firm's obligations ------------------------------------------------------------------------------

function weekOf(seconds) {
  const date = new Date(Number(seconds) * 1000);
  const monday = new Date(date.getTime() - ((date.getUTCDay() + 6) % 7) * DAY * 1000);
  return monday.toISOString().slice(0, 10);
}

async function obligations(ctx) {
  const line = await get(`/credit-lines/${ctx.me.id}`).catch(() => null);
  const confirmed = await getAll("/invoices", { state: "confirmed", counterparty: ctx.me.id });
  const owed = confirmed.filter((row) => same(row.buyer, ctx.me.id));
  const section = h("section", {}, h("h1", {}, t("nav.obligations")));
  if (line) {
    section.append(h("dl", { class: "facts", id: "credit-line" },
      h("dt", {}, t("credit.limit")), h("dd", {}, money(line.limit)),
      h("dt", {}, t("credit.used")), h("dd", {}, money(line.used)),
      h("dt", {}, t("credit.available")), h("dd", {}, money(line.available))));
  }
  const weeks = new Map();
  for (const row of owed) {
    const week = weekOf(row.due_date);
    const outstanding = fen(row.amount) - fen(row.repaid);
    weeks.set(week, (weeks.get(week) ?? 0n) + outstanding);
  }
  const ladder = [...weeks.entries()].sort().map(([week, total]) => [t("obl.week", { date: week }), total]);
  section.append(barChart(t("obl.ladder"), ladder) ?? "");
  const columns = [
    [t("invoice.id"), (row) => `#${row.id}`],
    [t("invoice.seller"), (row) => account(row.seller)],
    [t("invoice.due"), (row) => day(row.due_date)],
    [t("invoice.amount"), (row) => money(row.amount)],
    [t("invoice.outstanding"), (row) => money(fen(row.amount) - fen(row.repaid))],
    [t("actions"), (row) => form(t("obl.repay"), [field(t("obl.amount"), { name: "amount", inputmode: "decimal" })], t("obl.repay"),
      (element) => (amountOf(element, "amount") === null ? t("invalid.amount") : null),
      async (element) => {
        const body = { amount: amountOf(element, "amount") };
        if (await ctx.act("POST", `/obligations/${row.id}/repayments`, body, `${t("obl.repay")} #${row.id}`)) ctx.refresh();
      })],
  ];
  section.append(table(t("nav.obligations"), columns, owed, t("invoice.none")));
  return section;
}

// -- the operator: participants -----------------------------------------------------------------------------

async function participants(ctx) {
  const { items, pager } = await onePage("/participants", queryOf(), "participants");
  const section = h("section", {}, h("h1", {}, t("part.list")));
  if (has(ctx, "operator")) {
    const keyBox = h("div", { class: "card secret", hidden: true, role: "status" });
    const roles = ["core-firm", "supplier", "financier", "warehouse", "settlement-agent"];
    section.append(form(t("part.onboard"), [
      field(t("part.name"), { name: "name", autocomplete: "off" }),
      field(t("part.code"), { name: "credit_code", autocomplete: "off", maxlength: 18 }),
      field(t("part.roles"), { name: "role", options: roles.map((role) => [role, roleName(role)]) }),
    ], t("part.submit"), (element) => {
      if (!valueOf(element, "name")) return `${t("part.name")}: ${t("invalid.required")}`;
      return creditCodeValid(valueOf(element, "credit_code").toUpperCase()) ? null : t("part.codeInvalid");
    }, async (element) => {
      const body = {
        name: valueOf(element, "name"),
        credit_code: valueOf(element, "credit_code").toUpperCase(),
        roles: [valueOf(element, "role")],
      };
      const done = await ctx.act("POST", "/participants", body, `${t("part.onboard")} ${body.name}`);
      if (done && done.answer.api_key) {
        keyBox.hidden = false;
        keyBox.replaceChildren(h("p", {}, t("part.apiKey")), h("code", { id: "new-api-key" }, done.answer.api_key),
          h("p", {}, h("code", { id: "new-account" }, done.answer.participant.id)));
      }
    }), keyBox);
  }
  const columns = [
    [t("part.name"), (row) => row.name],
    [t("part.code"), (row) => row.credit_code],
    [t("part.roles"), (row) => row.roles.map(roleName).join("、")],
    [t("home.account"), (row) => h("code", {}, row.id)],
    [t("home.custody"), (row) => (row.custody === "self" ? t("signin.selfCustody") : t("signin.hosted"))],
    [t("part.status"), (row) => state(row.status)],
  ];
  section.append(table(t("part.list"), columns, items, "-"), pager);
  return section;
}

// -- the settlement agent: cash -----------------------------------------------------------------------------

async function cash(ctx) {
  const movement = (kind, path) => form(t(kind), [
    field(t("cash.participant"), { name: "participant", autocomplete: "off", placeholder: "0x…" }),
    field(t("cash.amount"), { name: "amount", inputmode: "decimal" }),
    field(t("cash.reference"), { name: "bank_reference", autocomplete: "off" }),
  ], t(kind), (element) => {
    if (!ADDRESS.test(valueOf(element, "participant"))) return `${t("cash.participant")}: ${t("invalid.address")}`;
    if (amountOf(element, "amount") === null) return `${t("cash.amount")}: ${t("invalid.amount")}`;
    return valueOf(element, "bank_reference") ? null : `${t("cash.reference")}: ${t("invalid.required")}`;
  }, async (element) => {
    const body = {
      participant: valueOf(element, "participant"),
      amount: amountOf(element, "amount"),
      bank_reference: valueOf(element, "bank_reference"),
    };
    await ctx.act("POST", path, body, `${t(kind)} ${formatYuan(body.amount)}`);
  });
  return h("section", {}, h("h1", {}, t("nav.cash")),
    movement("cash.deposit", "/deposits"), movement("cash.withdraw", "/withdrawals"));
}

export const VIEWS = { home, invoices, receivables, financing, portfolio, obligations, participants, cash, approvals };
