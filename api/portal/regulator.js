// The regulator's pages (the operator reads them too): the large-transaction report with its filters and files,
// the core firms' payment discipline (overdue obligations, days past due, late confirmations) with its files,
// freezes (the regulator alone freezes and lifts), the audit log with its anchors on chain and its verification,
// and the ledger's raw event log. Everything else stays read-only for the regulator: the pages of views.js show
// their action buttons to the parties of each item only.
import { get, request } from "./api.js";
import { field, h, table, valueOf } from "./dom.js";
import { register, t } from "./i18n.js";
import { formatBps, formatYuan, parseYuan, yuanText } from "./money.js";
import { ADDRESS, account, form, has, money, queryOf, withQuery } from "./views.js";
import { sensorLots } from "./warehouse.js";

register({
  messages: {
    "zh-CN": {
      "nav.freezes": "冻结", "nav.events": "链上事件",
      "rep.filter": "报告条件", "rep.dateFrom": "起始日（UTC）", "rep.dateTo": "截止日（UTC）",
      "rep.single": "单笔大额标准（元）", "rep.daily": "单日累计标准（元）", "rep.defaultHint": "留空则用平台设定：{amount}", "rep.customHint": "留空则用平台设定",
      "rep.apply": "生成报告", "rep.dateOrder": "起始日不能晚于截止日",
      "rep.exportSingle": "导出 CSV（单笔）", "rep.exportDaily": "导出 CSV（单日累计）", "rep.exportXlsx": "导出 XLSX",
      "rep.period": "报告期间", "rep.allDays": "全部日期", "rep.thresholds": "适用标准",
      "rep.thresholdText": "单笔 ≥ {single}；单日累计 ≥ {daily}", "rep.currency": "币种",
      "rep.singleTable": "大额单笔交易", "rep.dailyTable": "单日累计大额", "rep.noSingle": "该期间没有达到标准的单笔交易",
      "rep.noDaily": "该期间没有达到标准的单日累计", "rep.kind": "类型", "rep.date": "日期（UTC）", "rep.from": "付款方",
      "rep.to": "收款方", "rep.amount": "金额", "rep.reference": "依据", "rep.block": "区块",
      "rep.bank": "银行入金", "rep.bankOut": "银行出金", "rep.request": "融资申请 #{id}（面值 {face}）",
      "rep.participant": "参与方", "rep.sent": "付出", "rep.received": "收到", "rep.total": "合计", "rep.movements": "笔数",
      "ur.title": "未办理中登网登记的融资与质押", "ur.about": "放款后超过宽限期，融资方仍未在链上登记中登网（动产和权利担保统一登记）登记编号的保理融资与仓单质押",
      "ur.grace": "宽限期", "ur.graceText": "放款后 {days} 天", "ur.exportCsv": "导出 CSV（未登记）", "ur.exportXlsx": "导出 XLSX（未登记）",
      "ur.table": "未登记清单", "ur.none": "没有超过宽限期仍未登记的融资或质押", "ur.kind": "类型", "ur.kind.financing": "保理融资",
      "ur.kind.pledge": "仓单质押", "ur.id": "编号", "ur.financier": "融资方", "ur.grantor": "出让人/出质人", "ur.amount": "金额",
      "ur.fundedAt": "放款时间", "ur.days": "未登记天数",
      "pd.title": "核心企业付款纪律", "pd.about": "按链上时间计算：核心企业已确权但逾期未付的应付账款、逾期天数，以及对供应商发票确权迟延的比例",
      "pd.filter": "确权迟延标准", "pd.days": "确权迟延标准（天）", "pd.daysHint": "登记后超过此天数才确权（或仍未确权）即为迟延；留空则用平台设定：{days} 天",
      "pd.daysInvalid": "请填写 1 至 3650 之间的整数天数", "pd.apply": "更新",
      "pd.exportCsv": "导出 CSV（付款纪律）", "pd.exportXlsx": "导出 XLSX（付款纪律）",
      "pd.asOf": "截至（链上时间，UTC）", "pd.threshold": "确权迟延标准", "pd.thresholdText": "登记后 {days} 天",
      "pd.none": "尚无核心企业的发票", "pd.firm": "核心企业", "pd.outstanding": "未结清笔数", "pd.outstandingAmount": "未结清金额",
      "pd.overdue": "逾期笔数", "pd.overdueAmount": "逾期金额", "pd.maxDays": "最长逾期天数", "pd.avgDays": "加权平均逾期天数",
      "pd.paidLate": "逾期后结清笔数", "pd.repaidLate": "逾期后还款金额", "pd.registered": "供应商登记发票数",
      "pd.confirmedLate": "迟延确权", "pd.awaitingLate": "超期未确权", "pd.lateShare": "迟延比例",
      "pd.countShare": "{count} 笔（{share}）", "pd.table": "按核心企业（逾期金额大者在前）",
      "frz.freeze": "冻结", "frz.form": "冻结参与方、凭证或仓单", "frz.kind": "对象类型", "frz.target": "对象（账户或编号）",
      "frz.targetHint": "参与方填 0x 账户；凭证、仓单填编号", "frz.reason": "冻结理由",
      "frz.reasonHint": "理由保存在平台，链上只记录其 keccak-256 哈希", "frz.lift": "解除冻结", "frz.list": "当前冻结",
      "frz.none": "当前没有冻结", "frz.by": "冻结人", "frz.at": "冻结时间", "frz.reasonHash": "理由哈希",
      "frz.invalidTarget": "参与方请填 0x 账户，凭证或仓单请填正整数编号", "frz.reasonRequired": "请填写冻结理由（不超过 1000 字）",
      "frz.filterKind": "只看", "frz.all": "全部",
      "kind.participant": "参与方", "kind.piece": "应收账款凭证", "kind.receipt": "仓单",
      "kind.deposit": "入金", "kind.withdrawal": "出金", "kind.transfer": "转账", "kind.financing": "融资放款",
      "aud.verify": "核验审计日志", "aud.verifyHint": "重新计算每条记录的哈希与链接，并与链上每个锚定比对",
      "aud.valid": "核验结果", "aud.validYes": "完整有效", "aud.validNo": "发现篡改或缺失",
      "aud.records": "已核验记录数", "aud.head": "日志最新记录", "aud.anchorsChecked": "已比对的链上锚定数",
      "aud.latestAnchor": "最近锚定", "aud.anchorText": "第 {sequence} 条，区块 {block}", "aud.noAnchor": "尚未锚定",
      "aud.unanchored": "未锚定的记录数", "aud.firstInvalid": "第一条无效记录", "aud.noneInvalid": "无",
      "aud.reason": "原因", "aud.anchor": "立即锚定到链上", "aud.anchored": "已将第 {sequence} 条记录的哈希锚定在区块 {block}",
      "aud.alreadyAnchored": "最新记录（第 {sequence} 条）已锚定，无需重复", "aud.anchors": "链上锚定",
      "aud.noAnchors": "链上尚无锚定", "aud.sequence": "记录序号", "aud.hash": "哈希", "aud.operator": "锚定人",
      "aud.log": "审计日志记录", "aud.noRecords": "此页没有记录", "aud.time": "时间（UTC）", "aud.actor": "操作人",
      "aud.request": "请求", "aud.status": "结果", "aud.isAnchored": "已锚定", "aud.range": "第 {first}–{last} 条",
      "aud.export": "导出审计日志 CSV",
      "ev.filter": "筛选事件", "ev.contract": "合约", "ev.name": "事件名称", "ev.nameHint": "例如 PieceFrozen、DepositMinted",
      "ev.participant": "涉及的账户", "ev.from": "起始日（UTC）", "ev.to": "截止日（UTC）", "ev.fromBlock": "起始区块",
      "ev.toBlock": "截止区块", "ev.apply": "筛选", "ev.list": "链上事件（最新在前）", "ev.none": "没有符合条件的事件",
      "ev.block": "区块", "ev.time": "时间（UTC）", "ev.args": "参数", "ev.tx": "交易", "ev.count": "共 {total} 条，第 {page} 页",
      "ev.any": "全部", "ev.export": "导出 CSV", "ev.invalidBlock": "区块号应为非负整数",
      "reg.error": "未能完成：{reason}",
    },
    en: {
      "nav.freezes": "Freezes", "nav.events": "Event log",
      "rep.filter": "Report on", "rep.dateFrom": "From (UTC day)", "rep.dateTo": "To (UTC day)",
      "rep.single": "Single-transaction threshold (yuan)", "rep.daily": "Daily-total threshold (yuan)",
      "rep.defaultHint": "Empty: the platform's setting, {amount}", "rep.customHint": "Empty: the platform's setting",
      "rep.apply": "Make the report",
      "rep.dateOrder": "The first day must not be after the last",
      "rep.exportSingle": "Export CSV (single)", "rep.exportDaily": "Export CSV (daily totals)", "rep.exportXlsx": "Export XLSX",
      "rep.period": "Period", "rep.allDays": "all days", "rep.thresholds": "Thresholds",
      "rep.thresholdText": "single ≥ {single}; daily total ≥ {daily}", "rep.currency": "Currency",
      "rep.singleTable": "Large single transactions", "rep.dailyTable": "Large daily totals",
      "rep.noSingle": "No single transaction reaches the threshold in this period",
      "rep.noDaily": "No daily total reaches the threshold in this period", "rep.kind": "Kind", "rep.date": "Day (UTC)",
      "rep.from": "Payer", "rep.to": "Payee", "rep.amount": "Amount", "rep.reference": "Basis", "rep.block": "Block",
      "rep.bank": "bank deposit", "rep.bankOut": "bank withdrawal", "rep.request": "financing request #{id} (face value {face})",
      "rep.participant": "Participant", "rep.sent": "Sent", "rep.received": "Received", "rep.total": "Total",
      "rep.movements": "Movements",
      "ur.title": "Financings and pledges not registered in 中登网",
      "ur.about": "Factoring financings and warehouse-receipt pledges whose financier has not recorded on chain the number of its registration in 中登网 (the unified registry of security interests) longer than the grace period after funding",
      "ur.grace": "Grace period", "ur.graceText": "{days} days after funding", "ur.exportCsv": "Export CSV (unregistered)",
      "ur.exportXlsx": "Export XLSX (unregistered)", "ur.table": "Unregistered", "ur.none": "Nothing unregistered past the grace period",
      "ur.kind": "Kind", "ur.kind.financing": "factoring", "ur.kind.pledge": "receipt pledge", "ur.id": "Id", "ur.financier": "Financier",
      "ur.grantor": "Transferor / pledgor", "ur.amount": "Amount", "ur.fundedAt": "Funded", "ur.days": "Days unregistered",
      "pd.title": "Payment discipline of core firms",
      "pd.about": "By the chain's time: each core firm's confirmed obligations unpaid past their due date, the days past due, and the share of its suppliers' invoices it confirmed late",
      "pd.filter": "Late-confirmation threshold", "pd.days": "Confirmation threshold (days)",
      "pd.daysHint": "Confirmed (or still unconfirmed) more than this many days after registration is late; empty: the platform's setting, {days} days",
      "pd.daysInvalid": "A whole number of days from 1 to 3650", "pd.apply": "Update",
      "pd.exportCsv": "Export CSV (payment discipline)", "pd.exportXlsx": "Export XLSX (payment discipline)",
      "pd.asOf": "As of (chain time, UTC)", "pd.threshold": "Late confirmation", "pd.thresholdText": "more than {days} days after registration",
      "pd.none": "No core firm has an invoice yet", "pd.firm": "Core firm", "pd.outstanding": "Unpaid", "pd.outstandingAmount": "Unpaid amount",
      "pd.overdue": "Overdue", "pd.overdueAmount": "Overdue amount", "pd.maxDays": "Most days past due", "pd.avgDays": "Weighted average days past due",
      "pd.paidLate": "Paid after due", "pd.repaidLate": "Repaid after due", "pd.registered": "Invoices registered",
      "pd.confirmedLate": "Confirmed late", "pd.awaitingLate": "Awaiting too long", "pd.lateShare": "Late share",
      "pd.countShare": "{count} ({share})", "pd.table": "By core firm (largest overdue amount first)",
      "frz.freeze": "Freeze", "frz.form": "Freeze a participant, piece or receipt", "frz.kind": "What",
      "frz.target": "Which (account or id)", "frz.targetHint": "A participant by its 0x account; a piece or receipt by its id",
      "frz.reason": "Reason", "frz.reasonHint": "The reason stays with the platform; only its keccak-256 hash goes on chain",
      "frz.lift": "Lift the freeze", "frz.list": "Frozen now", "frz.none": "Nothing is frozen", "frz.by": "Frozen by",
      "frz.at": "Frozen at", "frz.reasonHash": "Reason hash",
      "frz.invalidTarget": "A participant by its 0x account, a piece or receipt by a positive id",
      "frz.reasonRequired": "Give the reason (at most 1,000 characters)", "frz.filterKind": "Show only", "frz.all": "All",
      "kind.participant": "participant", "kind.piece": "receivable piece", "kind.receipt": "warehouse receipt",
      "kind.deposit": "deposit", "kind.withdrawal": "withdrawal", "kind.transfer": "transfer", "kind.financing": "financing paid out",
      "aud.verify": "Verify the audit log",
      "aud.verifyHint": "Recomputes every record's hash and link and compares the log with every anchor on chain",
      "aud.valid": "Result", "aud.validYes": "intact", "aud.validNo": "altered or incomplete",
      "aud.records": "Records checked", "aud.head": "Latest record", "aud.anchorsChecked": "Anchors on chain compared",
      "aud.latestAnchor": "Latest anchor", "aud.anchorText": "record {sequence}, block {block}", "aud.noAnchor": "not anchored yet",
      "aud.unanchored": "Records not anchored yet", "aud.firstInvalid": "First invalid record", "aud.noneInvalid": "none",
      "aud.reason": "Reason", "aud.anchor": "Anchor on chain now", "aud.anchored": "Record {sequence}'s hash anchored in block {block}",
      "aud.alreadyAnchored": "The latest record ({sequence}) is anchored already", "aud.anchors": "Anchors on chain",
      "aud.noAnchors": "No anchor on chain yet", "aud.sequence": "Record", "aud.hash": "Hash", "aud.operator": "Anchored by",
      "aud.log": "Audit log records", "aud.noRecords": "No records on this page", "aud.time": "Time (UTC)", "aud.actor": "Actor",
      "aud.request": "Request", "aud.status": "Result", "aud.isAnchored": "anchored", "aud.range": "records {first}–{last}",
      "aud.export": "Export the audit log as CSV",
      "ev.filter": "Filter events", "ev.contract": "Contract", "ev.name": "Event name", "ev.nameHint": "e.g. PieceFrozen, DepositMinted",
      "ev.participant": "Account involved", "ev.from": "From (UTC day)", "ev.to": "To (UTC day)", "ev.fromBlock": "From block",
      "ev.toBlock": "To block", "ev.apply": "Filter", "ev.list": "Events on chain (newest first)", "ev.none": "No event matches",
      "ev.block": "Block", "ev.time": "Time (UTC)", "ev.args": "Arguments", "ev.tx": "Transaction",
      "ev.count": "{total} events, page {page}", "ev.any": "All", "ev.export": "Export CSV",
      "ev.invalidBlock": "A block number is a whole number, 0 or more",
      "reg.error": "Not done: {reason}",
    },
  },
  // The contracts' refusals of freezing and lifting, and of acts on what is frozen.
  errors: {
    RegistryNoChange: ["该参与方已处于此状态，无需变更（例如已冻结的再次冻结，或解除未冻结的参与方）", "Nothing to change: the participant is already in that state (e.g. frozen already, or not frozen)"],
    RegistryNotRegistered: ["该账户不是已接入的参与方", "The account is not an onboarded participant"],
    RegistryParticipantFrozen: ["该参与方已被监管冻结：冻结期间不能收付存款代币，也不能开展新业务", "The participant is frozen by the regulator: no deposit-token movement to or from it, no new business, until the freeze is lifted"],
    RegistryRecipientIsLedgerContract: ["收款方是账本合约，不能直接转入", "The recipient is one of the ledger's contracts"],
    ReceivablesPieceFrozen: ["该凭证已被监管冻结，解除前不能转让、融资或再次冻结", "The piece is frozen by the regulator: it cannot be transferred, financed or frozen again until the freeze is lifted"],
    ReceivablesPieceNotFrozen: ["该凭证未被冻结，无从解除", "The piece is not frozen: there is nothing to lift"],
    ReceivablesNonexistentPiece: ["没有这个编号的应收账款凭证", "No receivable piece has this id"],
    ReceiptIsFrozen: ["该仓单已被监管冻结", "The receipt is frozen by the regulator"],
    ReceiptNotFrozen: ["该仓单未被冻结，无从解除", "The receipt is not frozen: there is nothing to lift"],
    ReceiptNotFound: ["没有这个编号的仓单", "No warehouse receipt has this id"],
  },
  states: {
    frozen: ["已冻结", "frozen"],
  },
});

const KINDS = ["participant", "piece", "receipt"];
const CONTRACTS = ["registry", "token", "receivables", "receipts", "acts", "anchor"];

/** Unix seconds as "YYYY-MM-DD HH:MM:SS" (UTC). */
function when(seconds) {
  if (seconds === null || seconds === undefined) return "";
  return new Date(Number(seconds) * 1000).toISOString().slice(0, 19).replace("T", " ");
}

function shortHash(hash) {
  return hash ? h("code", { title: hash }, `${hash.slice(0, 10)}…${hash.slice(-6)}`) : "";
}

/** A UTC day (YYYY-MM-DD) as unix seconds of its first second, or of its last with ``end``. */
function dayStart(text, end = false) {
  const start = Date.parse(`${text}T00:00:00Z`) / 1000;
  return Number.isNaN(start) ? null : start + (end ? 86399 : 0);
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

/** Fetch a file of the API (format=csv or xlsx) and hand it to the browser as a download, under the service's
 * own file name (Content-Disposition). Answers an error text, or null. */
async function download(ctx, path, query, fallback) {
  try {
    const answer = await request("GET", path, { query, raw: true });
    const named = /filename="?([^";]+)"?/.exec(answer.headers.get("Content-Disposition") ?? "");
    const link = h("a", { href: URL.createObjectURL(answer.body), download: named ? named[1] : fallback });
    document.body.append(link);
    link.click();
    link.remove();
    return null;
  } catch (error) {
    return t("reg.error", { reason: ctx.describe(error) });
  }
}

function downloadButton(ctx, label, path, query, fallback, status) {
  return h("button", { type: "button", onclick: async () => {
    const problem = await download(ctx, path, query, fallback);
    status.hidden = !problem;
    status.textContent = problem ?? "";
  } }, label);
}

// -- the large-transaction report -----------------------------------------------------------------------------

function reportQuery(query) {
  const digits = (value) => (/^\d+$/.test(value ?? "") ? value : undefined);
  return {
    date_from: DATE.test(query.date_from ?? "") ? query.date_from : undefined,
    date_to: DATE.test(query.date_to ?? "") ? query.date_to : undefined,
    single_threshold: digits(query.single_threshold),
    daily_threshold: digits(query.daily_threshold),
  };
}

const yuanOrEmpty = (element, name) => {
  const text = valueOf(element, name);
  if (!text) return "";
  const value = parseYuan(text);
  return value !== null && value > 0n ? value.toString() : null;
};

const CONFIRMATION_DAYS = /^[1-9]\d{0,3}$/;

/** The payment-discipline report's threshold from the page's query: whole days, 1 to 3650, else the setting. */
function confirmationDays(query) {
  const days = query.confirmation_days ?? "";
  return CONFIRMATION_DAYS.test(days) && Number(days) <= 3650 ? days : undefined;
}

async function reports(ctx) {
  const query = reportQuery(queryOf());
  const days = confirmationDays(queryOf());
  const [report, discipline, watched, unregistered] = await Promise.all([
    get("/reports/large-transactions", query),
    get("/reports/payment-discipline", { confirmation_days: days }),
    get("/sensors/lots").then((answer) => answer.items),
    get("/reports/unregistered"),
  ]);
  const section = h("section", {}, h("h1", {}, t("nav.reports")));
  const threshold = (name) => (query[name] ? yuanText(query[name]) : "");
  // The report names the thresholds it applied: the platform's settings when the query gave none.
  const defaultHint = (name) => (query[name] ? t("rep.customHint") : t("rep.defaultHint", { amount: formatYuan(report[name]) }));
  section.append(form(t("rep.filter"), [
    field(t("rep.dateFrom"), { name: "date_from", type: "date", value: query.date_from ?? "" }),
    field(t("rep.dateTo"), { name: "date_to", type: "date", value: query.date_to ?? "" }),
    field(t("rep.single"), { name: "single_threshold", inputmode: "decimal", value: threshold("single_threshold") },
      defaultHint("single_threshold")),
    field(t("rep.daily"), { name: "daily_threshold", inputmode: "decimal", value: threshold("daily_threshold") },
      defaultHint("daily_threshold")),
  ], t("rep.apply"), (element) => {
    const from = valueOf(element, "date_from");
    const to = valueOf(element, "date_to");
    if (from && to && from > to) return t("rep.dateOrder");
    if (yuanOrEmpty(element, "single_threshold") === null) return `${t("rep.single")}: ${t("invalid.amount")}`;
    if (yuanOrEmpty(element, "daily_threshold") === null) return `${t("rep.daily")}: ${t("invalid.amount")}`;
    return null;
  }, async (element) => {
    withQuery("reports", {
      date_from: valueOf(element, "date_from"),
      date_to: valueOf(element, "date_to"),
      single_threshold: yuanOrEmpty(element, "single_threshold"),
      daily_threshold: yuanOrEmpty(element, "daily_threshold"),
      confirmation_days: days,
    });
  }));

  const status = h("p", { class: "error", role: "alert", hidden: true });
  const path = "/reports/large-transactions";
  section.append(h("div", { class: "bar", id: "report-exports" },
    downloadButton(ctx, t("rep.exportSingle"), path, { ...query, format: "csv", part: "single" }, "large-transactions.csv", status),
    downloadButton(ctx, t("rep.exportDaily"), path, { ...query, format: "csv", part: "daily" }, "large-transactions-daily.csv", status),
    downloadButton(ctx, t("rep.exportXlsx"), path, { ...query, format: "xlsx" }, "large-transactions.xlsx", status)), status);

  const period = report.date_from || report.date_to ? `${report.date_from ?? "…"} – ${report.date_to ?? "…"}` : t("rep.allDays");
  section.append(h("dl", { class: "facts", id: "report-terms" },
    h("dt", {}, t("rep.period")), h("dd", {}, period),
    h("dt", {}, t("rep.thresholds")), h("dd", {}, t("rep.thresholdText", {
      single: formatYuan(report.single_threshold), daily: formatYuan(report.daily_threshold),
    })),
    h("dt", {}, t("rep.currency")), h("dd", {}, report.currency)));

  const payer = (row) => {
    if (row.kind === "financing") return account(row.financier);
    return row.sender ? account(row.sender) : t("rep.bank");
  };
  const payee = (row) => {
    if (row.kind === "financing") return account(row.holder);
    return row.recipient ? account(row.recipient) : t("rep.bankOut");
  };
  const basis = (row) => {
    if (row.kind === "financing") return t("rep.request", { id: row.request_id, face: formatYuan(row.face_amount) });
    return row.bank_reference ? shortHash(row.bank_reference) : "";
  };
  section.append(h("div", { id: "report-single" }, table(t("rep.singleTable"), [
    [t("rep.kind"), (row) => t(`kind.${row.kind}`)],
    [t("rep.date"), (row) => row.date],
    [t("rep.from"), payer],
    [t("rep.to"), payee],
    [t("rep.amount"), (row) => money(row.amount)],
    [t("rep.reference"), basis],
    [t("rep.block"), (row) => (row.block_number ?? "")],
  ], report.single, t("rep.noSingle"))));
  section.append(h("div", { id: "report-daily" }, table(t("rep.dailyTable"), [
    [t("rep.participant"), (row) => account(row.participant)],
    [t("rep.date"), (row) => row.date],
    [t("rep.sent"), (row) => money(row.sent)],
    [t("rep.received"), (row) => money(row.received)],
    [t("rep.total"), (row) => money(row.total)],
    [t("rep.movements"), (row) => row.movements],
  ], report.daily, t("rep.noDaily"))));
  section.append(paymentDiscipline(ctx, discipline, query, days));
  section.append(sensorLots(watched));
  section.append(unregisteredReport(ctx, unregistered));
  return section;
}

// -- financings and pledges not registered in 中登网 ---------------------------------------------------------------

function unregisteredReport(ctx, report) {
  const part = h("section", { id: "unregistered-report" }, h("h2", {}, t("ur.title")), h("p", { class: "hint" }, t("ur.about")));
  const status = h("p", { class: "error", role: "alert", hidden: true });
  const path = "/reports/unregistered";
  part.append(h("div", { class: "bar", id: "unregistered-exports" },
    downloadButton(ctx, t("ur.exportCsv"), path, { format: "csv" }, "unregistered.csv", status),
    downloadButton(ctx, t("ur.exportXlsx"), path, { format: "xlsx" }, "unregistered.xlsx", status)), status);
  part.append(h("dl", { class: "facts", id: "unregistered-terms" },
    h("dt", {}, t("pd.asOf")), h("dd", {}, when(report.chain_time)),
    h("dt", {}, t("ur.grace")), h("dd", {}, t("ur.graceText", { days: report.grace_days }))));
  part.append(h("div", { id: "unregistered" }, table(t("ur.table"), [
    [t("ur.kind"), (row) => t(`ur.kind.${row.kind}`)],
    [t("ur.id"), (row) => `#${row.id}`],
    [t("ur.financier"), (row) => account(row.financier, row.financier_name)],
    [t("ur.grantor"), (row) => account(row.grantor, row.grantor_name)],
    [t("ur.amount"), (row) => money(row.amount)],
    [t("ur.fundedAt"), (row) => when(row.funded_at)],
    [t("ur.days"), (row) => row.days_unregistered],
  ], report.items, t("ur.none"))));
  return part;
}

// -- the core firms' payment discipline -----------------------------------------------------------------------

function paymentDiscipline(ctx, report, largeQuery, days) {
  const part = h("section", { id: "discipline-report" }, h("h2", {}, t("pd.title")), h("p", { class: "hint" }, t("pd.about")));
  part.append(form(t("pd.filter"), [
    field(t("pd.days"), { name: "confirmation_days", inputmode: "numeric", value: days ?? "" },
      t("pd.daysHint", { days: report.confirmation_days })),
  ], t("pd.apply"), (element) => {
    const text = valueOf(element, "confirmation_days");
    return text && !confirmationDays({ confirmation_days: text }) ? t("pd.daysInvalid") : null;
  }, async (element) => {
    withQuery("reports", { ...largeQuery, confirmation_days: valueOf(element, "confirmation_days") });
  }));

  const status = h("p", { class: "error", role: "alert", hidden: true });
  const path = "/reports/payment-discipline";
  const query = { confirmation_days: days };
  part.append(h("div", { class: "bar", id: "discipline-exports" },
    downloadButton(ctx, t("pd.exportCsv"), path, { ...query, format: "csv" }, "payment-discipline.csv", status),
    downloadButton(ctx, t("pd.exportXlsx"), path, { ...query, format: "xlsx" }, "payment-discipline.xlsx", status)), status);
  part.append(h("dl", { class: "facts", id: "discipline-terms" },
    h("dt", {}, t("pd.asOf")), h("dd", {}, when(report.chain_time)),
    h("dt", {}, t("pd.threshold")), h("dd", {}, t("pd.thresholdText", { days: report.confirmation_days })),
    h("dt", {}, t("rep.currency")), h("dd", {}, report.currency)));
  const counted = (count, bps) => t("pd.countShare", { count, share: formatBps(bps) });
  part.append(h("div", { id: "discipline" }, table(t("pd.table"), [
    [t("pd.firm"), (row) => account(row.core_firm, row.name)],
    [t("pd.outstanding"), (row) => row.outstanding],
    [t("pd.outstandingAmount"), (row) => money(row.outstanding_amount)],
    [t("pd.overdue"), (row) => row.overdue],
    [t("pd.overdueAmount"), (row) => money(row.overdue_amount)],
    [t("pd.maxDays"), (row) => row.max_days_past_due],
    [t("pd.avgDays"), (row) => row.average_days_past_due],
    [t("pd.paidLate"), (row) => row.paid_late],
    [t("pd.repaidLate"), (row) => money(row.repaid_late_amount)],
    [t("pd.registered"), (row) => row.registered],
    [t("pd.confirmedLate"), (row) => counted(row.confirmed_late, row.confirmed_late_share_bps)],
    [t("pd.awaitingLate"), (row) => row.awaiting_late],
    [t("pd.lateShare"), (row) => formatBps(row.late_share_bps)],
  ], report.firms, t("pd.none"))));
  return part;
}

// -- freezes --------------------------------------------------------------------------------------------------

function targetOf(kind, text) {
  if (kind === "participant") return ADDRESS.test(text) ? text : null;
  return /^[1-9]\d{0,77}$/.test(text) ? text : null;
}

async function freezes(ctx) {
  const query = queryOf();
  const kind = KINDS.includes(query.kind) ? query.kind : undefined;
  const list = await get("/freezes", { kind, size: 200 });
  const regulator = has(ctx, "regulator");
  const section = h("section", {}, h("h1", {}, t("nav.freezes")));
  if (regulator) {
    section.append(form(t("frz.form"), [
      field(t("frz.kind"), { name: "kind", options: KINDS.map((value) => [value, t(`kind.${value}`)]) }),
      field(t("frz.target"), { name: "target", autocomplete: "off" }, t("frz.targetHint")),
      field(t("frz.reason"), { name: "reason", autocomplete: "off", maxlength: 1000 }, t("frz.reasonHint")),
    ], t("frz.freeze"), (element) => {
      if (targetOf(valueOf(element, "kind"), valueOf(element, "target")) === null) return t("frz.invalidTarget");
      const reason = valueOf(element, "reason");
      return reason && reason.length <= 1000 ? null : t("frz.reasonRequired");
    }, async (element) => {
      const body = {
        kind: valueOf(element, "kind"),
        target: targetOf(valueOf(element, "kind"), valueOf(element, "target")),
        reason: valueOf(element, "reason"),
      };
      const label = `${t("frz.freeze")} ${t(`kind.${body.kind}`)} ${body.target}`;
      if (await ctx.act("POST", "/freezes", body, label)) ctx.refresh();
    }));
  }
  const select = h("select", { id: "freeze-kind", name: "kind" },
    h("option", { value: "" }, t("frz.all")),
    KINDS.map((value) => h("option", { value, selected: kind === value }, t(`kind.${value}`))));
  const status = h("p", { class: "error", role: "alert", hidden: true });
  section.append(h("div", { class: "bar" },
    h("label", { for: select.id }, t("frz.filterKind")), select,
    h("button", { type: "button", onclick: () => withQuery("freezes", { kind: select.value }) }, t("list.filter")),
    downloadButton(ctx, t("list.export"), "/freezes", { kind, format: "csv" }, "freezes.csv", status)), status);
  const columns = [
    [t("frz.kind"), (row) => t(`kind.${row.kind}`)],
    [t("frz.target"), (row) => (row.kind === "participant" ? account(row.target) : `#${row.target}`)],
    [t("frz.by"), (row) => (row.frozen_by ? account(row.frozen_by) : "")],
    [t("frz.at"), (row) => when(row.frozen_at)],
    [t("frz.reasonHash"), (row) => shortHash(row.reason_hash)],
    [t("ev.block"), (row) => row.block_number ?? ""],
  ];
  if (regulator) {
    columns.push([t("actions"), (row) => h("button", { type: "button", "data-freeze": row.id, onclick: async () => {
      const label = `${t("frz.lift")} ${t(`kind.${row.kind}`)} ${row.target}`;
      if (await ctx.act("DELETE", `/freezes/${row.id}`, undefined, label)) ctx.refresh();
    } }, t("frz.lift"))]);
  }
  section.append(table(t("frz.list"), columns, list.items, t("frz.none")));
  return section;
}

// -- the audit log --------------------------------------------------------------------------------------------

function verification(view) {
  const anchor = view.latest_anchor;
  return h("dl", { class: "facts", id: "audit-verification", "data-valid": String(view.valid) },
    h("dt", {}, t("aud.valid")),
    h("dd", {}, h("span", { class: `state state-${view.valid ? "confirmed" : "rejected"}` }, view.valid ? t("aud.validYes") : t("aud.validNo"))),
    h("dt", {}, t("aud.records")), h("dd", { "data-field": "records" }, String(view.records)),
    h("dt", {}, t("aud.head")), h("dd", {}, `#${view.head.sequence} `, shortHash(view.head.hash)),
    h("dt", {}, t("aud.anchorsChecked")), h("dd", {}, String(view.anchors_checked)),
    h("dt", {}, t("aud.latestAnchor")), h("dd", { "data-field": "latest-anchor" }, anchor
      ? [t("aud.anchorText", { sequence: anchor.sequence, block: anchor.block_number }), " ", shortHash(anchor.hash)]
      : t("aud.noAnchor")),
    h("dt", {}, t("aud.unanchored")), h("dd", { "data-field": "unanchored" }, String(view.unanchored_records)),
    h("dt", {}, t("aud.firstInvalid")), h("dd", { "data-field": "first-invalid" },
      view.first_invalid === null ? t("aud.noneInvalid") : `#${view.first_invalid}`),
    view.reason ? [h("dt", {}, t("aud.reason")), h("dd", {}, view.reason)] : null);
}

const AUDIT_PAGE = 50;

async function audit(ctx) {
  const query = queryOf();
  const after = /^\d+$/.test(query.after ?? "") ? Number(query.after) : 0;
  const [log, anchors] = await Promise.all([
    get("/audit/log", { after, size: AUDIT_PAGE }),
    get("/audit/events", { contract: "anchor", name: "AuditLogAnchored", size: 50 }),
  ]);
  const section = h("section", {}, h("h1", {}, t("nav.audit")));

  const result = h("div", { id: "audit-result", role: "status" });
  const status = h("p", { class: "error", role: "alert", hidden: true });
  const verify = h("button", { type: "button", class: "primary", onclick: async () => {
    verify.disabled = true;
    status.hidden = true;
    try {
      result.replaceChildren(verification(await get("/audit/log/verify")));
    } catch (error) {
      status.hidden = false;
      status.textContent = t("reg.error", { reason: ctx.describe(error) });
    } finally {
      verify.disabled = false;
    }
  } }, t("aud.verify"));
  const card = h("div", { class: "card" }, h("h2", {}, t("aud.verify")), h("p", { class: "hint" }, t("aud.verifyHint")), verify);
  if (has(ctx, "operator")) {
    // POST /audit/log/anchors is the operator's alone (the regulator reads and verifies).
    const anchored = h("p", { id: "audit-anchored", role: "status" });
    card.append(h("button", { type: "button", onclick: async () => {
      const done = await ctx.act("POST", "/audit/log/anchors", undefined, t("aud.anchor"));
      if (!done) return;
      await ctx.refresh();
      const note = document.getElementById("audit-anchored");
      if (note) note.textContent = done.anchored
        ? t("aud.anchored", { sequence: done.sequence, block: done.block_number })
        : t("aud.alreadyAnchored", { sequence: done.sequence });
    } }, t("aud.anchor")), anchored);
  }
  section.append(card, status, result);

  const anchoredSequences = new Set(anchors.items.map((event) => Number(event.args.sequence)));
  section.append(h("div", { id: "audit-anchors" }, table(t("aud.anchors"), [
    [t("aud.sequence"), (row) => `#${row.args.sequence}`],
    [t("aud.hash"), (row) => shortHash(row.args.head)],
    [t("aud.operator"), (row) => account(row.args.operator)],
    [t("ev.block"), (row) => row.block_number],
    [t("ev.time"), (row) => when(row.block_timestamp)],
  ], anchors.items, t("aud.noAnchors"))));

  const items = log.items;
  const exportStatus = h("p", { class: "error", role: "alert", hidden: true });
  section.append(h("div", { class: "bar" },
    h("button", { type: "button", disabled: after === 0, onclick: () => withQuery("audit", { after: String(Math.max(0, after - AUDIT_PAGE)) }) }, t("list.prev")),
    h("span", {}, items.length ? t("aud.range", { first: items[0].sequence, last: items[items.length - 1].sequence }) : ""),
    h("button", { type: "button", disabled: items.length < AUDIT_PAGE, onclick: () => withQuery("audit", { after: String(after + AUDIT_PAGE) }) }, t("list.next")),
    downloadButton(ctx, t("aud.export"), "/audit/log", { format: "csv" }, "audit-log.csv", exportStatus)), exportStatus);
  section.append(h("div", { id: "audit-log" }, table(t("aud.log"), [
    [t("aud.sequence"), (row) => [`#${row.sequence}`, anchoredSequences.has(row.sequence) ? [" ", h("span", { class: "state state-active" }, t("aud.isAnchored"))] : null]],
    [t("aud.time"), (row) => row.recorded_at.slice(0, 19).replace("T", " ")],
    [t("aud.actor"), (row) => (row.actor ? account(row.actor) : "")],
    [t("aud.request"), (row) => h("code", {}, `${row.method} ${row.path}`)],
    [t("aud.status"), (row) => [`${row.status_code} `, h("code", {}, row.outcome)]],
    [t("aud.hash"), (row) => shortHash(row.hash)],
  ], items, t("aud.noRecords"))));
  return section;
}

// -- the event log --------------------------------------------------------------------------------------------

function eventQuery(query) {
  const whole = (value) => (/^\d+$/.test(value ?? "") ? value : undefined);
  return {
    contract: CONTRACTS.includes(query.contract) ? query.contract : undefined,
    name: /^\w{1,64}$/.test(query.name ?? "") ? query.name : undefined,
    participant: ADDRESS.test(query.participant ?? "") ? query.participant : undefined,
    from: DATE.test(query.from ?? "") ? query.from : undefined,
    to: DATE.test(query.to ?? "") ? query.to : undefined,
    from_block: whole(query.from_block),
    to_block: whole(query.to_block),
    page: whole(query.page) ?? "1",
  };
}

function argument(value) {
  if (typeof value === "string" && ADDRESS.test(value)) return account(value);
  if (typeof value === "string" && /^0x[0-9a-fA-F]{64}$/.test(value)) return shortHash(value);
  return h("code", {}, typeof value === "object" ? JSON.stringify(value) : String(value));
}

async function events(ctx) {
  const query = eventQuery(queryOf());
  const apiQuery = {
    contract: query.contract, name: query.name, participant: query.participant,
    from_block: query.from_block, to_block: query.to_block,
    from_time: query.from ? dayStart(query.from) : undefined,
    to_time: query.to ? dayStart(query.to, true) : undefined,
  };
  const answer = await get("/audit/events", { ...apiQuery, page: query.page, size: 50 });
  const section = h("section", {}, h("h1", {}, t("nav.events")));
  section.append(form(t("ev.filter"), [
    field(t("ev.contract"), { name: "contract", options: [["", t("ev.any")], ...CONTRACTS.map((name) => [name, name])] }),
    field(t("ev.name"), { name: "name", autocomplete: "off", value: query.name ?? "" }, t("ev.nameHint")),
    field(t("ev.participant"), { name: "participant", autocomplete: "off", placeholder: "0x…", value: query.participant ?? "" }),
    field(t("ev.from"), { name: "from", type: "date", value: query.from ?? "" }),
    field(t("ev.to"), { name: "to", type: "date", value: query.to ?? "" }),
    field(t("ev.fromBlock"), { name: "from_block", inputmode: "numeric", value: query.from_block ?? "" }),
    field(t("ev.toBlock"), { name: "to_block", inputmode: "numeric", value: query.to_block ?? "" }),
  ], t("ev.apply"), (element) => {
    const participant = valueOf(element, "participant");
    if (participant && !ADDRESS.test(participant)) return `${t("ev.participant")}: ${t("invalid.address")}`;
    const from = valueOf(element, "from");
    const to = valueOf(element, "to");
    if (from && to && from > to) return t("rep.dateOrder");
    for (const name of ["from_block", "to_block"]) {
      const value = valueOf(element, name);
      if (value && !/^\d+$/.test(value)) return t("ev.invalidBlock");
    }
    return null;
  }, async (element) => {
    withQuery("events", Object.fromEntries(["contract", "name", "participant", "from", "to", "from_block", "to_block"]
      .map((name) => [name, valueOf(element, name)])));
  }));
  const contract = section.querySelector("[name=contract]");
  contract.value = query.contract ?? "";

  const page = Number(query.page);
  const pageQuery = { ...query };
  const status = h("p", { class: "error", role: "alert", hidden: true });
  section.append(h("div", { class: "bar" },
    h("button", { type: "button", disabled: page <= 1, onclick: () => withQuery("events", { ...pageQuery, page: String(page - 1) }) }, t("list.prev")),
    h("span", { id: "events-count" }, t("ev.count", { total: answer.total ?? answer.items.length, page })),
    h("button", { type: "button", disabled: !answer.next && page * 50 >= (answer.total ?? 0), onclick: () => withQuery("events", { ...pageQuery, page: String(page + 1) }) }, t("list.next")),
    downloadButton(ctx, t("ev.export"), "/audit/events", { ...apiQuery, format: "csv" }, "events.csv", status)), status);
  section.append(h("div", { id: "events" }, table(t("ev.list"), [
    [t("ev.block"), (row) => `${row.block_number}:${row.log_index}`],
    [t("ev.time"), (row) => when(row.block_timestamp)],
    [t("ev.contract"), (row) => row.contract],
    [t("ev.name"), (row) => h("strong", {}, row.name)],
    [t("ev.args"), (row) => h("ul", { class: "args" }, Object.entries(row.args).map(([name, value]) => h("li", {}, `${name} `, argument(value))))],
    [t("ev.tx"), (row) => shortHash(row.tx_hash)],
  ], answer.items, t("ev.none"))));
  return section;
}

export const VIEWS = { reports, freezes, audit, events };
