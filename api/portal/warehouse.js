// Warehouse receipts and pledge loans: the warehouse issues, revalues and attests receipts and confirms the release
// of goods; a receipt's owner pledges, transfers and redeems it; a financier funds, declines and enforces pledge
// loans and sees their margin calls; the borrower repays or withdraws its request. Every figure is read from the
// API (lists from the index, a pledge's debt and a receipt's valuation from the chain), every act is a request of
// the API followed to its block (ctx.act). Receipt ids are 256-bit numbers: they stay decimal strings here.
import { chainNow, get, getAll } from "./api.js";
import { field, h, table, valueOf } from "./dom.js";
import { creditCodeValid } from "./identifiers.js";
import { register, stateName, t } from "./i18n.js";
import { fen, formatBps, formatYuan, parsePercent, parseYuan } from "./money.js";
import {
  ADDRESS, DAY, PAGE_SIZE, account, amountOf, day, form, has, listBar, money, onePage, openDocument, queryOf,
  registrationAction, same, state, withQuery,
} from "./views.js";

register({
  messages: {
    "zh-CN": {
      "wr.list": "仓单", "wr.issue": "开具仓单", "wr.owner": "货主账户", "wr.lot": "货物批次号",
      "wr.lotHint": "字母、数字及 . _ / -，以字母或数字开头，最长 64 位", "wr.goods": "货物描述",
      "wr.quantity": "数量", "wr.unit": "计量单位", "wr.unitHint": "1 至 8 个英文字符，如 t、kg、bale",
      "wr.valuation": "估值（元）", "wr.expiry": "有效期至", "wr.submit": "开具",
      "wr.id": "仓单", "wr.warehouse": "仓储方", "wr.holder": "持有人", "wr.goodsQty": "货物", "wr.value": "估值",
      "wr.valuedOn": "{date} 估值", "wr.expires": "有效期至", "wr.status": "货物状态", "wr.none": "暂无仓单",
      "wr.revalue": "重新估值", "wr.newValuation": "新估值（元）", "wr.basis": "估值依据",
      "wr.basisHint": "如价格来源与日期；其哈希值上链", "wr.attest": "更新货物状态", "wr.newStatus": "货物状态",
      "wr.inspection": "查验记录", "wr.confirmRedemption": "确认货物已出库",
      "wr.transfer": "转让仓单", "wr.to": "受让方账户", "wr.redeem": "申请提货", "wr.withdrawRedemption": "撤回提货申请",
      "wr.pledge": "申请质押借款", "wr.financier": "资金方账户", "wr.principal": "借款本金（元）",
      "wr.rate": "年利率（%）", "wr.due": "还款到期日", "wr.send": "提交",
      "wr.ltv": "质押率（本金 ÷ 估值 {valuation}）：{ltv}", "wr.ltvNone": "质押率：请先输入借款本金",
      "wr.ltvHint": "资金方按其质押率上限审核，超出上限的申请会被拒绝",
      "wr.pledgedIn": "质押借款 #{id}", "wr.frozen": "已被监管冻结",
      "pl.list": "质押借款", "pl.incoming": "待您审批的质押借款申请", "pl.id": "借款", "pl.receipt": "仓单",
      "pl.borrower": "借款人", "pl.financier": "资金方", "pl.principal": "本金", "pl.rate": "年利率", "pl.due": "到期日",
      "pl.ltv": "质押率", "pl.interest": "应付利息", "pl.owed": "应还合计", "pl.limit": "可贷上限",
      "pl.none": "暂无质押借款", "pl.noneIncoming": "暂无待审批的申请", "pl.fund": "放款", "pl.decline": "拒绝",
      "pl.enforce": "处置质押仓单", "pl.overdue": "已逾期", "pl.repay": "还款", "pl.repayAmount": "还款金额（元）",
      "pl.repayAll": "结清全部欠款", "pl.repayHint": "先还利息后还本金；结清时按交易执行时的全部欠款扣款",
      "pl.repayTooMuch": "还款金额超过当前欠款 {owed}", "pl.cancel": "撤回申请",
      "pl.marginCalls": "追加保证金通知", "pl.marginCall": "追保通知", "pl.noCalls": "暂无追加保证金通知",
      "pl.when": "时间", "pl.valuation": "新估值", "pl.maintenance": "维持率", "pl.callPrincipal": "当时本金",
      "pl.calledOn": "{date} 追保",
      "sn.lots": "押品监控（传感器）", "sn.none": "暂无传感器监控的仓单", "sn.status": "监控状态",
      "sn.monitored": "监控中", "sn.unmonitored": "未监控（传感器无读数）", "sn.last": "最近读数（UTC）",
      "sn.alerts": "短少告警",
      "invalid.lot": "批次号只能包含字母、数字及 . _ / -，须以字母或数字开头，最长 64 位",
      "invalid.quantity": "数量须为正整数", "invalid.unit": "计量单位须为 1 至 8 个英文字符",
      "invalid.expiry": "有效期须晚于今天", "invalid.text": "此项必填，最多 2000 字",
      "invalid.pledgeDue": "还款到期日须晚于今天，且早于仓单有效期 {expiry}", "invalid.tooLarge": "金额过大",
      "invalid.percent": "年利率须为 0 至 100 之间的百分比，最多两位小数", "invalid.pledgeSelf": "不能向自己申请质押借款",
      "el.title": "仓单要素（GB/T 30332-2024、《民法典》第九百零九条）",
      "el.hint": "以下要素写入仓单文件，其 SHA-256 上链；货物描述、数量、估值与有效期见上",
      "el.depositorName": "存货人名称", "el.depositorDomicile": "存货人住所", "el.depositorCode": "存货人统一社会信用代码",
      "el.variety": "品种", "el.specification": "规格", "el.quality": "质量（等级、标准）", "el.packaging": "包装",
      "el.pieces": "件数", "el.marks": "标记", "el.loss": "损耗标准", "el.lossTolerance": "合理损耗率（%）",
      "el.place": "储存场所", "el.storedFrom": "储存期限起始日", "el.storedFromHint": "储存期限至仓单有效期截止",
      "el.fee": "仓储费（元）", "el.feeBasis": "仓储费计费方式", "el.insuranceAmount": "保险金额（元）",
      "el.insuranceHint": "仓储物未投保的，保险各项留空", "el.insuredFrom": "保险期间起始日", "el.insuredTo": "保险期间终止日",
      "el.insurer": "保险人名称", "el.issuer": "填发人", "el.issuePlace": "填发地", "el.document": "仓单文件",
      "invalid.creditCode": "统一社会信用代码须为 18 位，且校验码正确（GB 32100-2015）",
      "invalid.pieces": "件数须为正整数", "invalid.tolerance": "合理损耗率须为 0 至 100 之间的百分比，最多两位小数",
      "invalid.storedFrom": "储存期限起始日须为日期，且不晚于仓单有效期", "invalid.fee": "仓储费须为以元为单位、最多两位小数的金额（可为 0）",
      "invalid.insurance": "已投保的，须填写保险金额、保险期间（终止日不早于起始日）及保险人名称",
    },
    en: {
      "wr.list": "Warehouse receipts", "wr.issue": "Issue a receipt", "wr.owner": "Owner account", "wr.lot": "Lot number",
      "wr.lotHint": "Letters, digits and . _ / -, starting with a letter or digit, up to 64", "wr.goods": "Goods description",
      "wr.quantity": "Quantity", "wr.unit": "Unit", "wr.unitHint": "1 to 8 ASCII characters, such as t, kg, bale",
      "wr.valuation": "Valuation (yuan)", "wr.expiry": "Valid until", "wr.submit": "Issue",
      "wr.id": "Receipt", "wr.warehouse": "Warehouse", "wr.holder": "Owner", "wr.goodsQty": "Goods", "wr.value": "Valuation",
      "wr.valuedOn": "valued {date}", "wr.expires": "Valid until", "wr.status": "Goods status", "wr.none": "No receipts yet",
      "wr.revalue": "Revalue", "wr.newValuation": "New valuation (yuan)", "wr.basis": "Basis of the valuation",
      "wr.basisHint": "The price source and its date, say; its hash goes on chain", "wr.attest": "Update the goods status",
      "wr.newStatus": "Goods status", "wr.inspection": "Inspection record", "wr.confirmRedemption": "Confirm the goods left",
      "wr.transfer": "Transfer the receipt", "wr.to": "Recipient account", "wr.redeem": "Ask for the goods",
      "wr.withdrawRedemption": "Withdraw the request for the goods",
      "wr.pledge": "Request a pledge loan", "wr.financier": "Financier account", "wr.principal": "Principal (yuan)",
      "wr.rate": "Annual interest rate (%)", "wr.due": "Repayment due date", "wr.send": "Submit",
      "wr.ltv": "Loan-to-value (principal ÷ valuation {valuation}): {ltv}", "wr.ltvNone": "Loan-to-value: enter the principal first",
      "wr.ltvHint": "The financier lends up to its advance rate of the valuation; a request above it is refused",
      "wr.pledgedIn": "pledge loan #{id}", "wr.frozen": "frozen by the regulator",
      "pl.list": "Pledge loans", "pl.incoming": "Pledge requests awaiting you", "pl.id": "Loan", "pl.receipt": "Receipt",
      "pl.borrower": "Borrower", "pl.financier": "Financier", "pl.principal": "Principal", "pl.rate": "Rate", "pl.due": "Due",
      "pl.ltv": "Loan-to-value", "pl.interest": "Interest due", "pl.owed": "Owed in all", "pl.limit": "Advance limit",
      "pl.none": "No pledge loans", "pl.noneIncoming": "No requests awaiting you", "pl.fund": "Fund the loan",
      "pl.decline": "Decline", "pl.enforce": "Enforce: take the receipt", "pl.overdue": "past due", "pl.repay": "Repay",
      "pl.repayAmount": "Amount to repay (yuan)", "pl.repayAll": "Pay everything owed",
      "pl.repayHint": "Interest first, then principal; paying everything settles what is owed when the transaction runs",
      "pl.repayTooMuch": "That is more than the {owed} owed now", "pl.cancel": "Withdraw the request",
      "pl.marginCalls": "Margin calls", "pl.marginCall": "Margin calls", "pl.noCalls": "No margin calls",
      "pl.when": "When", "pl.valuation": "New valuation", "pl.maintenance": "Maintenance ratio",
      "pl.callPrincipal": "Principal then", "pl.calledOn": "margin call on {date}",
      "sn.lots": "Collateral monitoring (sensors)", "sn.none": "No receipt watched by sensors", "sn.status": "Monitoring",
      "sn.monitored": "monitored", "sn.unmonitored": "unmonitored (no readings)", "sn.last": "Last reading (UTC)",
      "sn.alerts": "Shortfall alerts",
      "invalid.lot": "A lot number has letters, digits and . _ / -, starts with a letter or digit, and has at most 64",
      "invalid.quantity": "The quantity is a whole number above zero", "invalid.unit": "A unit is 1 to 8 ASCII characters",
      "invalid.expiry": "The receipt must be valid beyond today", "invalid.text": "Required, at most 2,000 characters",
      "invalid.pledgeDue": "The due date must be after today and before the receipt expires on {expiry}",
      "invalid.tooLarge": "The amount is too large", "invalid.percent": "Enter a rate from 0 to 100 % with at most two decimals",
      "invalid.pledgeSelf": "You cannot borrow from yourself",
      "el.title": "Receipt elements (GB/T 30332-2024, Civil Code art. 909)",
      "el.hint": "These go into the receipt document, whose SHA-256 goes on chain; goods, amount, valuation and expiry are above",
      "el.depositorName": "Depositor's name", "el.depositorDomicile": "Depositor's domicile",
      "el.depositorCode": "Depositor's credit code", "el.variety": "Variety", "el.specification": "Specification",
      "el.quality": "Quality (grade, standard)", "el.packaging": "Packaging", "el.pieces": "Number of pieces",
      "el.marks": "Marks", "el.loss": "Loss standard", "el.lossTolerance": "Tolerated loss (%)",
      "el.place": "Storage place", "el.storedFrom": "Stored from", "el.storedFromHint": "The storage period ends when the receipt expires",
      "el.fee": "Storage fee (yuan)", "el.feeBasis": "Basis of the storage fee", "el.insuranceAmount": "Insured amount (yuan)",
      "el.insuranceHint": "Leave the insurance empty if the goods are not insured", "el.insuredFrom": "Insured from",
      "el.insuredTo": "Insured to", "el.insurer": "Insurer", "el.issuer": "Drawn up by", "el.issuePlace": "Place of issue",
      "el.document": "Receipt document",
      "invalid.creditCode": "A unified social credit code has 18 characters and the right check character (GB 32100-2015)",
      "invalid.pieces": "The number of pieces is a whole number above zero",
      "invalid.tolerance": "Enter a tolerated loss from 0 to 100 % with at most two decimals",
      "invalid.storedFrom": "The storage period starts on a date no later than the receipt's expiry",
      "invalid.fee": "Enter the storage fee in yuan with at most two decimals (0 is allowed)",
      "invalid.insurance": "Insured goods need the insured amount, the period (its end not before its start) and the insurer",
    },
  },
  // The contracts' refusals of receipts and pledges (IWarehouseReceipts.sol) not worded in i18n.js, nor in
  // regulator.js (ReceiptNotFound, ReceiptIsFrozen, ReceiptNotFrozen).
  errors: {
    ReceiptInvalidLotKey: ["货物批次号无效", "The lot number is not valid"],
    ReceiptInvalidDocuments: ["缺少货物描述或单据", "The goods description or the documents are missing"],
    ReceiptInvalidQuantity: ["数量须大于零且须有计量单位", "The quantity must be above zero, with a unit"],
    ReceiptInvalidValuation: ["估值须大于零且不能过大", "The valuation must be above zero and not too large"],
    ReceiptInvalidReadings: ["传感器读数摘要不能为空，容差不能超过 100%", "A readings digest must not be empty and a tolerance must be at most 100%"],
    ReceiptInvalidExpiry: ["仓单有效期须晚于当前时间", "The receipt's expiry must be in the future"],
    ReceiptInvalidTransition: ["仓单当前状态不允许此操作（例如没有待确认的提货申请）", "The receipt's state does not allow this (no request for the goods is open, say)"],
    ReceiptNotIssuer: ["只有开具该仓单的仓储方可以操作", "Only the warehouse that issued the receipt may do this"],
    ReceiptNotAttester: ["只有开具仓单的仓储方或其指定的证明人可以估值或更新货物状态", "Only the issuing warehouse or the oracle it appointed may value the goods or attest their state"],
    ReceiptLocked: ["仓单有未结的质押或提货申请，已被锁定，不能转让或提货", "The receipt is locked by an open pledge or request for the goods: it cannot move or be redeemed"],
    PledgeNotFound: ["质押借款不存在", "No such pledge loan"],
    PledgeInvalidTransition: ["质押借款当前状态不允许此操作", "The pledge loan's state does not allow this"],
    PledgeNotActive: ["质押借款未在还款期内，不能还款", "The pledge loan is not active: it cannot be repaid"],
    PledgeAlreadyRegistered: ["该质押借款的中登网登记已记录，不能重复记录", "This pledge loan's registration was recorded already"],
    PledgeInvalidRegistration: ["登记编号须为 20 位数字，登记日期不能晚于今天", "A registration number has 20 digits and its date cannot be after today"],
    PledgeNotBorrower: ["只有借款人可以操作", "Only the borrower may do this"],
    PledgeNotFinancier: ["只有申请中指定的资金方可以操作", "Only the financier named in the request may do this"],
    PledgeFinancierIsBorrower: ["不能向自己申请质押借款", "You cannot borrow from yourself"],
    PledgeZeroPrincipal: ["借款本金须大于零", "The principal must be more than zero"],
    PledgeInvalidDueDate: ["还款到期日须晚于今天，且早于仓单有效期", "The due date must be after today and before the receipt expires"],
    PledgePastDue: ["申请的还款到期日已过，不能再放款", "The request's due date has passed: it can no longer be funded"],
    PledgeZeroRepayment: ["还款金额须大于零", "The repayment must be more than zero"],
    PledgeInvalidAdvanceRate: ["质押率上限须在 0 至 100% 之间", "An advance rate is at most 100 %"],
    PledgeInvalidMaintenanceRatio: ["维持率须大于 0 且不超过 100%", "A maintenance ratio is above zero and at most 100 %"],
  },
  states: {
    pledge_requested: ["质押申请中", "pledge requested"], redemption_requested: ["提货申请中", "goods requested"],
    redeemed: ["已提货注销", "redeemed"], released: ["已解押", "released"],
    sound: ["完好", "sound"], damaged: ["损坏", "damaged"], disputed: ["有争议", "disputed"], missing: ["缺失", "missing"],
  },
});

const RECEIPT_STATES = ["active", "pledge_requested", "pledged", "redemption_requested", "redeemed"];
const PLEDGE_STATES = ["requested", "active", "released", "enforced", "declined", "cancelled"];
const PLEDGED = new Set(["pledge_requested", "pledged"]); // the states in which the receipt's pledge is open
const GOODS = ["sound", "damaged", "disputed", "missing"];
const LOT = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$/; // ledger.identifiers.LOT_NUMBER_PATTERN
const UNIT = /^[\x20-\x7e]{1,8}$/;
const MAX_AMOUNT = 2n ** 96n - 1n;
const MAX_QUANTITY = 2n ** 64n - 1n;

/** A receipt id (a 256-bit number as decimal digits) shortened for the eye; the whole id is its title. */
function receiptRef(id) {
  const text = String(id);
  return h("span", { class: "account", title: text }, `#${text.length > 12 ? `${text.slice(0, 6)}…${text.slice(-4)}` : text}`);
}

/** Loan-to-value as a percentage, in integer arithmetic on fen, rounded up to the basis point (a loan a fen above
 * 70 % shows 70.01 %, never 70.00 %). */
export function loanToValue(principal, valuation) {
  const value = fen(valuation);
  if (value <= 0n) return "";
  return formatBps((fen(principal) * 10_000n + value - 1n) / value);
}

function today() {
  return Math.floor(chainNow() / DAY) * DAY;
}

/** A date input's value (YYYY-MM-DD) as the unix seconds of its UTC midnight, as the API reads it; NaN if none. */
function dateSeconds(text) {
  return /^\d{4}-\d{2}-\d{2}$/.test(text) ? Date.parse(`${text}T00:00:00Z`) / 1000 : NaN;
}

function text(element, name) {
  const value = valueOf(element, name);
  return value.length >= 1 && value.length <= 2000 ? value : null;
}

function button(label, onclick, attributes = {}) {
  return h("button", { type: "button", ...attributes, onclick }, label);
}

// -- receipts -----------------------------------------------------------------------------------------------

async function receipts(ctx) {
  const query = queryOf();
  const { items, pager } = await onePage("/warehouse-receipts", query, "receipts");
  const section = h("section", {}, h("h1", {}, t("wr.list")));
  if (has(ctx, "warehouse")) section.append(issueForm(ctx));
  section.append(listBar("/warehouse-receipts", RECEIPT_STATES, query, (chosen) => withQuery("receipts", chosen)));
  const columns = [
    [t("wr.id"), (row) => receiptRef(row.id)],
    [t("wr.lot"), (row) => (row.lot_number ? [row.lot_number, row.goods_description ? [h("br"), h("small", { class: "hint" }, row.goods_description)] : null] : "-")],
    [t("wr.warehouse"), (row) => account(row.warehouse)],
    [t("wr.holder"), (row) => (row.owner ? account(row.owner) : "")],
    [t("wr.goodsQty"), (row) => `${row.quantity} ${row.unit}`],
    [t("wr.value"), (row) => [money(row.valuation), h("br"), h("small", { class: "hint" }, t("wr.valuedOn", { date: day(row.valued_at) }))]],
    [t("wr.expires"), (row) => day(row.expiry)],
    [t("wr.status"), (row) => state(row.goods_status)],
    [t("list.state"), (row) => [state(row.state), row.frozen ? [" ", h("small", { class: "error" }, t("wr.frozen"))] : null,
      row.pledge_id !== null && PLEDGED.has(row.state) ? [h("br"), h("small", { class: "hint" }, t("wr.pledgedIn", { id: row.pledge_id }))] : null]],
    [t("actions"), (row) => receiptActions(ctx, row)],
  ];
  section.append(table(t("wr.list"), columns, items, t("wr.none")), pager);
  return section;
}

/** The elements of the receipt document (api/receipt_document.py): [name, label key, max length or a kind]. */
const ELEMENT_TEXTS = [
  ["depositor_name", "el.depositorName", 200], ["depositor_domicile", "el.depositorDomicile", 500],
  ["variety", "el.variety", 200], ["specification", "el.specification", 500], ["quality", "el.quality", 500],
  ["packaging", "el.packaging", 500], ["marks", "el.marks", 500], ["loss_description", "el.loss", 2000],
  ["storage_place", "el.place", 500], ["fee_basis", "el.feeBasis", 500], ["issuer", "el.issuer", 200],
  ["issue_place", "el.issuePlace", 200],
];
const INSURANCE = ["insurance_amount", "insured_from", "insured_to", "insurer"];

function elementFields() {
  const line = (name, key, maxlength) => field(t(key), { name, autocomplete: "off", maxlength });
  return h("fieldset", { class: "elements" },
    h("legend", {}, t("el.title")),
    h("p", { class: "hint" }, t("el.hint")),
    line("depositor_name", "el.depositorName", 200),
    line("depositor_domicile", "el.depositorDomicile", 500),
    field(t("el.depositorCode"), { name: "depositor_code", autocomplete: "off", maxlength: 18, placeholder: "91310000…" }),
    line("variety", "el.variety", 200),
    line("specification", "el.specification", 500),
    line("quality", "el.quality", 500),
    line("packaging", "el.packaging", 500),
    field(t("el.pieces"), { name: "pieces", inputmode: "numeric" }),
    line("marks", "el.marks", 500),
    line("loss_description", "el.loss", 2000),
    field(t("el.lossTolerance"), { name: "loss_tolerance", inputmode: "decimal", placeholder: "0.30" }),
    line("storage_place", "el.place", 500),
    field(t("el.storedFrom"), { name: "stored_from", type: "date" }, t("el.storedFromHint")),
    field(t("el.fee"), { name: "storage_fee", inputmode: "decimal", placeholder: "15,000.00" }),
    line("fee_basis", "el.feeBasis", 500),
    field(t("el.insuranceAmount"), { name: "insurance_amount", inputmode: "decimal" }, t("el.insuranceHint")),
    field(t("el.insuredFrom"), { name: "insured_from", type: "date" }),
    field(t("el.insuredTo"), { name: "insured_to", type: "date" }),
    line("insurer", "el.insurer", 200),
    line("issuer", "el.issuer", 200),
    line("issue_place", "el.issuePlace", 200));
}

/** What is wrong with the elements typed (in words), or null; ``expiry`` is the receipt's (unix seconds). */
function elementsProblem(element, expiry) {
  for (const [name, key, length] of ELEMENT_TEXTS) {
    const value = valueOf(element, name);
    if (!value || value.length > length || /[\u0000-\u001f\u007f]/.test(value)) return `${t(key)}: ${t("invalid.text")}`;
  }
  if (!creditCodeValid(valueOf(element, "depositor_code"))) return `${t("el.depositorCode")}: ${t("invalid.creditCode")}`;
  const pieces = valueOf(element, "pieces");
  if (!/^[1-9]\d{0,9}$/.test(pieces) || Number(pieces) > 2 ** 32 - 1) return t("invalid.pieces");
  const tolerance = parsePercent(valueOf(element, "loss_tolerance"));
  if (tolerance === null || tolerance > 10_000) return t("invalid.tolerance");
  const from = dateSeconds(valueOf(element, "stored_from"));
  if (!(from <= expiry)) return t("invalid.storedFrom");
  const fee = parseYuan(valueOf(element, "storage_fee"));
  if (fee === null || fee > MAX_AMOUNT) return t("invalid.fee");
  if (INSURANCE.some((name) => valueOf(element, name))) {
    const amount = amountOf(element, "insurance_amount");
    const start = dateSeconds(valueOf(element, "insured_from"));
    const end = dateSeconds(valueOf(element, "insured_to"));
    const insurer = valueOf(element, "insurer");
    if (amount === null || amount > MAX_AMOUNT || !(start <= end) || !insurer || insurer.length > 200) return t("invalid.insurance");
  }
  return null;
}

/** The ``elements`` object of POST /warehouse-receipts from the form (amounts BigInt fen, never floats). */
function elementsOf(element) {
  const elements = {
    depositor: {
      name: valueOf(element, "depositor_name"),
      domicile: valueOf(element, "depositor_domicile"),
      credit_code: valueOf(element, "depositor_code"),
    },
    goods: {
      variety: valueOf(element, "variety"),
      specification: valueOf(element, "specification"),
      quality: valueOf(element, "quality"),
      packaging: valueOf(element, "packaging"),
      pieces: Number(valueOf(element, "pieces")),
      marks: valueOf(element, "marks"),
    },
    loss_standard: { description: valueOf(element, "loss_description"), tolerance_bps: parsePercent(valueOf(element, "loss_tolerance")) },
    storage_place: valueOf(element, "storage_place"),
    storage_period: { start: valueOf(element, "stored_from") },
    storage_fee: { amount: parseYuan(valueOf(element, "storage_fee")), basis: valueOf(element, "fee_basis") },
    issuer: valueOf(element, "issuer"),
    issue_place: valueOf(element, "issue_place"),
  };
  if (INSURANCE.some((name) => valueOf(element, name))) {
    elements.insurance = {
      amount: amountOf(element, "insurance_amount"),
      start: valueOf(element, "insured_from"),
      end: valueOf(element, "insured_to"),
      insurer: valueOf(element, "insurer"),
    };
  }
  return elements;
}

function issueForm(ctx) {
  return form(t("wr.issue"), [
    field(t("wr.owner"), { name: "owner", autocomplete: "off", placeholder: "0x…" }),
    field(t("wr.lot"), { name: "lot_number", autocomplete: "off", maxlength: 64 }, t("wr.lotHint")),
    field(t("wr.goods"), { name: "goods_description", autocomplete: "off", maxlength: 2000 }),
    field(t("wr.quantity"), { name: "quantity", inputmode: "numeric" }),
    field(t("wr.unit"), { name: "unit", autocomplete: "off", maxlength: 8 }, t("wr.unitHint")),
    field(t("wr.valuation"), { name: "valuation", inputmode: "decimal", placeholder: "1,000,000.00" }),
    field(t("wr.expiry"), { name: "expiry", type: "date", min: day(today() + DAY) }),
    elementFields(),
  ], t("wr.submit"), (element) => {
    if (!ADDRESS.test(valueOf(element, "owner"))) return `${t("wr.owner")}: ${t("invalid.address")}`;
    if (!LOT.test(valueOf(element, "lot_number"))) return t("invalid.lot");
    if (text(element, "goods_description") === null) return `${t("wr.goods")}: ${t("invalid.text")}`;
    const quantity = valueOf(element, "quantity");
    if (!/^[1-9]\d{0,19}$/.test(quantity) || BigInt(quantity) > MAX_QUANTITY) return t("invalid.quantity");
    if (!UNIT.test(valueOf(element, "unit"))) return t("invalid.unit");
    const valuation = amountOf(element, "valuation");
    if (valuation === null) return `${t("wr.valuation")}: ${t("invalid.amount")}`;
    if (valuation > MAX_AMOUNT) return `${t("wr.valuation")}: ${t("invalid.tooLarge")}`;
    const expiry = dateSeconds(valueOf(element, "expiry"));
    if (!(expiry > chainNow()) || new Date(expiry * 1000).getUTCFullYear() > 2200) return t("invalid.expiry");
    return elementsProblem(element, expiry);
  }, async (element) => {
    const body = {
      owner: valueOf(element, "owner"),
      lot_number: valueOf(element, "lot_number"),
      goods_description: valueOf(element, "goods_description"),
      quantity: BigInt(valueOf(element, "quantity")),
      unit: valueOf(element, "unit"),
      valuation: amountOf(element, "valuation"),
      expiry: valueOf(element, "expiry"),
      elements: elementsOf(element),
    };
    const done = await ctx.act("POST", "/warehouse-receipts", body, `${t("wr.issue")} ${body.lot_number}`);
    if (done) ctx.refresh();
  });
}

function receiptActions(ctx, row) {
  const label = (key) => `${t(key)} #${String(row.id).slice(-4)}`;
  const done = (answer) => answer && ctx.refresh();
  const path = `/warehouse-receipts/${row.id}`;
  const parts = [];
  const open = [];
  if (row.document_hash && !/^0x0+$/.test(row.document_hash)) {
    parts.push(h("button", { type: "button", class: "link", "data-receipt-document": String(row.id), onclick: () => openDocument(ctx, row.document_hash) }, t("el.document")));
  }
  if (same(row.warehouse, ctx.me.id) && has(ctx, "warehouse") && row.state !== "redeemed") {
    if (row.state === "redemption_requested") {
      parts.push(button(t("wr.confirmRedemption"), async () =>
        done(await ctx.act("POST", `${path}/redemption/confirm`, undefined, label("wr.confirmRedemption"))), { class: "primary" }));
    }
    open.push(form(t("wr.revalue"), [
      field(t("wr.newValuation"), { name: "valuation", inputmode: "decimal" }),
      field(t("wr.basis"), { name: "attestation", autocomplete: "off", maxlength: 2000 }, t("wr.basisHint")),
    ], t("wr.revalue"), (element) => {
      const valuation = amountOf(element, "valuation");
      if (valuation === null) return `${t("wr.newValuation")}: ${t("invalid.amount")}`;
      if (valuation > MAX_AMOUNT) return `${t("wr.newValuation")}: ${t("invalid.tooLarge")}`;
      return text(element, "attestation") === null ? `${t("wr.basis")}: ${t("invalid.text")}` : null;
    }, async (element) => {
      const body = { valuation: amountOf(element, "valuation"), attestation: valueOf(element, "attestation") };
      done(await ctx.act("POST", `${path}/valuations`, body, `${label("wr.revalue")} ${formatYuan(body.valuation)}`));
    }));
    open.push(form(t("wr.attest"), [
      field(t("wr.newStatus"), { name: "status", options: GOODS.map((value) => [value, stateName(value)]) }),
      field(t("wr.inspection"), { name: "attestation", autocomplete: "off", maxlength: 2000 }),
    ], t("wr.attest"), (element) => (text(element, "attestation") === null ? `${t("wr.inspection")}: ${t("invalid.text")}` : null),
    async (element) => {
      const body = { status: valueOf(element, "status"), attestation: valueOf(element, "attestation") };
      done(await ctx.act("POST", `${path}/goods-status`, body, `${label("wr.attest")}: ${stateName(body.status)}`));
    }));
  }
  if (same(row.owner, ctx.me.id) && !row.frozen) {
    if (row.state === "active") {
      if (row.goods_status === "sound") open.push(pledgeForm(ctx, row)); // only sound goods are pledged
      open.push(form(t("wr.transfer"), [field(t("wr.to"), { name: "to", autocomplete: "off", placeholder: "0x…" })], t("wr.send"),
        (element) => (ADDRESS.test(valueOf(element, "to")) ? null : `${t("wr.to")}: ${t("invalid.address")}`),
        async (element) => done(await ctx.act("POST", `${path}/transfers`, { to: valueOf(element, "to") }, label("wr.transfer")))));
      open.push(button(t("wr.redeem"), async () => done(await ctx.act("POST", `${path}/redeem`, undefined, label("wr.redeem")))));
    }
    if (row.state === "redemption_requested") {
      parts.push(button(t("wr.withdrawRedemption"), async () =>
        done(await ctx.act("POST", `${path}/redemption/withdraw`, undefined, label("wr.withdrawRedemption")))));
    }
  }
  if (open.length) parts.push(h("details", { class: "actions", "data-receipt": String(row.id) }, h("summary", {}, t("actions")), open));
  return parts.length ? h("div", { "data-receipt-actions": String(row.id) }, parts) : null;
}

/** The owner's pledge request, with the loan-to-value worked out as the principal is typed. */
function pledgeForm(ctx, row) {
  const ratio = h("p", { class: "hint ltv", role: "status", "aria-live": "polite" }, t("wr.ltvNone"));
  const element = form(t("wr.pledge"), [
    field(t("wr.financier"), { name: "financier", autocomplete: "off", placeholder: "0x…" }),
    field(t("wr.principal"), { name: "principal", inputmode: "decimal" }),
    ratio,
    field(t("wr.rate"), { name: "rate", inputmode: "decimal", placeholder: "6.00" }),
    field(t("wr.due"), { name: "due_date", type: "date", min: day(today() + DAY), max: day(Number(row.expiry) - DAY) }),
    h("p", { class: "hint" }, t("wr.ltvHint")),
  ], t("wr.send"), (check) => {
    const financier = valueOf(check, "financier");
    if (!ADDRESS.test(financier)) return `${t("wr.financier")}: ${t("invalid.address")}`;
    if (same(financier, ctx.me.id)) return t("invalid.pledgeSelf");
    if (amountOf(check, "principal") === null) return `${t("wr.principal")}: ${t("invalid.amount")}`;
    const rate = parsePercent(valueOf(check, "rate"));
    if (rate === null || rate > 10_000) return t("invalid.percent");
    const due = dateSeconds(valueOf(check, "due_date"));
    if (!(due > chainNow() && due < Number(row.expiry))) return t("invalid.pledgeDue", { expiry: day(row.expiry) });
    return null;
  }, async (sent) => {
    const body = {
      receipt_id: String(row.id),
      financier: valueOf(sent, "financier"),
      principal: amountOf(sent, "principal"),
      rate_bps: parsePercent(valueOf(sent, "rate")),
      due_date: valueOf(sent, "due_date"),
    };
    const done = await ctx.act("POST", "/pledges", body, `${t("wr.pledge")} ${formatYuan(body.principal)}`);
    if (done) ctx.refresh();
  });
  element.querySelector("[name=principal]").addEventListener("input", () => {
    const principal = parseYuan(valueOf(element, "principal"));
    ratio.textContent = principal === null || principal <= 0n ? t("wr.ltvNone")
      : t("wr.ltv", { valuation: formatYuan(row.valuation), ltv: loanToValue(principal, row.valuation) });
  });
  return element;
}

// -- pledge loans -------------------------------------------------------------------------------------------

async function pledges(ctx) {
  const query = queryOf();
  const [{ items, pager }, incoming, calls, watched] = await Promise.all([
    onePage("/pledges", query, "pledges"),
    has(ctx, "financier") ? getAll("/pledges", { state: "requested" }) : [],
    get("/margin-calls", { size: PAGE_SIZE }).then((answer) => answer.items), // the latest
    get("/sensors/lots").then((answer) => answer.items),
  ]);
  const mineToFund = incoming.filter((row) => same(row.financier, ctx.me.id));
  // What is open is read from the chain now: the debt with its interest to this second, the advance limit of a
  // request, and the receipt's valuation for the loan-to-value.
  const open = [...new Map([...items, ...mineToFund].filter((row) => row.state === "requested" || row.state === "active")
    .map((row) => [row.id, row])).values()];
  const details = new Map(await Promise.all(open.map(async (row) => {
    const [pledge, receipt] = await Promise.all([get(`/pledges/${row.id}`), get(`/warehouse-receipts/${row.receipt_id}`).catch(() => null)]);
    return [row.id, { pledge, receipt }];
  })));
  const ltv = (row) => {
    const found = details.get(row.id);
    if (!found || !found.receipt) return "";
    const principal = found.pledge.owed ? found.pledge.owed.principal : found.pledge.principal;
    return h("span", { class: "ltv" }, loanToValue(principal, found.receipt.valuation));
  };
  const section = h("section", {}, h("h1", {}, t("pl.list")));
  if (has(ctx, "financier")) {
    section.append(table(t("pl.incoming"), [
      [t("pl.id"), pledgeRef],
      [t("pl.receipt"), (row) => receiptRef(row.receipt_id)],
      [t("pl.borrower"), (row) => account(row.borrower)],
      [t("pl.principal"), (row) => money(row.principal)],
      [t("pl.rate"), (row) => formatBps(row.rate_bps)],
      [t("pl.due"), (row) => day(row.due_date)],
      [t("pl.ltv"), ltv],
      [t("pl.limit"), (row) => (details.get(row.id)?.pledge.advance_limit != null ? money(details.get(row.id).pledge.advance_limit) : "")],
      [t("actions"), (row) => incomingActions(ctx, row)],
    ], mineToFund, t("pl.noneIncoming")));
  }
  section.append(listBar("/pledges", PLEDGE_STATES, query, (chosen) => withQuery("pledges", chosen)));
  section.append(table(t("pl.list"), [
    [t("pl.id"), pledgeRef],
    [t("pl.receipt"), (row) => receiptRef(row.receipt_id)],
    [t("pl.borrower"), (row) => account(row.borrower)],
    [t("pl.financier"), (row) => account(row.financier)],
    [t("pl.principal"), (row) => money(details.get(row.id)?.pledge.owed?.principal ?? row.principal)],
    [t("pl.rate"), (row) => formatBps(row.rate_bps)],
    [t("pl.due"), (row) => [day(row.due_date), overdue(row) ? [" ", h("small", { class: "error" }, t("pl.overdue"))] : null]],
    [t("pl.ltv"), ltv],
    [t("pl.interest"), (row) => {
      const owed = details.get(row.id)?.pledge.owed;
      return owed ? [money(owed.interest), h("br"), h("small", { class: "hint" }, `${t("pl.owed")} ${formatYuan(owed.total)}`)] : "";
    }],
    [t("list.state"), (row) => [state(row.state), row.margin_called_at ? marginCallsOf(row) : null]],
    [t("actions"), (row) => pledgeActions(ctx, row, details.get(row.id)?.pledge)],
  ], items, t("pl.none")), pager);
  section.append(sensorLots(watched));
  section.append(table(t("pl.marginCalls"), callColumns(true), calls, t("pl.noCalls")));
  return section;
}

/** The lots watched by sensors that the caller sees (GET /sensors/lots): a lender's pledged lots, a warehouse's
 * own, all of them for the regulator; an unmonitored lot stands out. */
export function sensorLots(lots) {
  return h("div", { id: "sensor-lots" }, table(t("sn.lots"), [
    [t("pl.receipt"), (row) => receiptRef(String(row.receipt_id))],
    [t("sn.status"), (row) => h("span", { class: row.status === "unmonitored" ? "error" : "", "data-sensor-status": String(row.receipt_id) },
      t(row.status === "unmonitored" ? "sn.unmonitored" : "sn.monitored"))],
    [t("sn.last"), (row) => (row.last_observed_at ? new Date(row.last_observed_at * 1000).toISOString().slice(0, 19).replace("T", " ") : "")],
    [t("sn.alerts"), (row) => String(row.alerts)],
  ], lots, t("sn.none")));
}

function pledgeRef(row) {
  return h("span", { "data-pledge-id": row.id }, `#${row.id}`);
}

function overdue(row) {
  return row.state === "active" && Number(row.due_date) < chainNow();
}

function callColumns(withPledge) {
  return [
    [t("pl.when"), (call) => day(call.block_timestamp)],
    withPledge ? [t("pl.id"), (call) => `#${call.pledge_id}`] : null,
    withPledge ? [t("pl.receipt"), (call) => receiptRef(call.receipt_id)] : null,
    [t("pl.callPrincipal"), (call) => money(call.principal)],
    [t("pl.valuation"), (call) => money(call.valuation)],
    [t("pl.ltv"), (call) => loanToValue(call.principal, call.valuation)],
    [t("pl.maintenance"), (call) => formatBps(call.maintenance_ratio_bps)],
  ].filter(Boolean);
}

/** The margin calls of one pledge, read when opened (GET /pledges/{id}/margin-calls). */
function marginCallsOf(row) {
  const body = h("div", {}, t("loading"));
  const element = h("details", { class: "actions", "data-margin-calls": row.id },
    h("summary", {}, t("pl.calledOn", { date: day(row.margin_called_at) })), body);
  element.addEventListener("toggle", async () => {
    if (!element.open || body.dataset.loaded) return;
    body.dataset.loaded = "true";
    const calls = await getAll(`/pledges/${row.id}/margin-calls`);
    body.replaceChildren(table(t("pl.marginCall"), callColumns(false), calls, t("pl.noCalls")));
  });
  return [h("br"), element];
}

function incomingActions(ctx, row) {
  const done = (answer) => answer && ctx.refresh();
  return h("div", { "data-pledge": row.id },
    button(t("pl.fund"), async () => done(await ctx.act("POST", `/pledges/${row.id}/fund`, undefined, `${t("pl.fund")} #${row.id}`)), { class: "primary" }),
    button(t("pl.decline"), async () => done(await ctx.act("POST", `/pledges/${row.id}/decline`, undefined, `${t("pl.decline")} #${row.id}`))));
}

function pledgeActions(ctx, row, pledge) {
  const done = (answer) => answer && ctx.refresh();
  const label = (key) => `${t(key)} #${row.id}`;
  if (row.state === "active" && same(row.financier, ctx.me.id) && overdue(row)) {
    return button(t("pl.enforce"), async () =>
      done(await ctx.act("POST", `/pledges/${row.id}/enforce`, undefined, label("pl.enforce"))), { "data-pledge": row.id });
  }
  if (row.state === "active" && same(row.financier, ctx.me.id)) {
    return registrationAction(ctx, row, `/pledges/${row.id}/registration`);
  }
  if (!same(row.borrower, ctx.me.id)) return null;
  if (row.state === "requested") {
    return button(t("pl.cancel"), async () =>
      done(await ctx.act("POST", `/pledges/${row.id}/cancel`, undefined, label("pl.cancel"))), { "data-pledge": row.id });
  }
  if (row.state !== "active") return null;
  const repay = form(t("pl.repay"), [
    field(t("pl.repayAmount"), { name: "amount", inputmode: "decimal" }),
    field(t("pl.repayAll"), { name: "all", type: "checkbox" }),
    h("p", { class: "hint" }, t("pl.repayHint")),
  ], t("pl.repay"), (element) => {
    if (element.querySelector("[name=all]").checked) return null;
    const amount = amountOf(element, "amount");
    if (amount === null) return `${t("pl.repayAmount")}: ${t("invalid.amount")}`;
    if (pledge?.owed && amount > fen(pledge.owed.total)) return t("pl.repayTooMuch", { owed: formatYuan(pledge.owed.total) });
    return null;
  }, async (element) => {
    const all = element.querySelector("[name=all]").checked;
    const body = { amount: all ? null : amountOf(element, "amount") };
    done(await ctx.act("POST", `/pledges/${row.id}/repay`, body, `${label("pl.repay")} ${all ? t("pl.repayAll") : formatYuan(body.amount)}`));
  });
  return h("details", { class: "actions", "data-pledge": row.id }, h("summary", {}, t("actions")), repay);
}

export const VIEWS = { receipts, pledges };
