// A signed act in words, in the user's language, made here from the very typed data the page is about to
// sign (not from the service's sentence): amounts in yuan from the exact fen, rates in percent, dates as dates.
// tests/portal checks that every act type of ledger/acts.py has its sentence here, in both languages.
import { language } from "./i18n.js";
import { formatBps, formatYuan } from "./money.js";

const MONEY = new Set(["amount", "grant", "value", "fee", "valuation", "principal", "maxFee"]);
const RATES = new Set(["discountRateBps", "rateBps", "maxDiscountRateBps"]);
const DATES = new Set(["dueDate", "expiry", "registeredAt"]);
// ASCII text left-aligned in 32 bytes (a 中登网 registration number), shown as the text.
const TEXTS = new Set(["number"]);

const SENTENCES = {
  RegisterInvoice: ["登记发票（{keyHash}）：向 {buyer} 收款 {amount}，到期日 {dueDate}", "Register invoice {keyHash} of {amount} on {buyer}, due {dueDate}"],
  ConfirmInvoice: ["确认发票 #{invoiceId}：承诺于 {dueDate} 向 {seller} 支付 {amount}", "Confirm invoice #{invoiceId}: pay {amount} to {seller} on {dueDate}"],
  RejectInvoice: ["拒绝发票 #{invoiceId}", "Reject invoice #{invoiceId}"],
  SetCreditLine: ["向 {coreFirm} 授信 {grant}", "Grant {grant} of credit to {coreFirm}"],
  AssignPiece: ["将应收账款凭证 #{pieceId} 中的 {value} 转让给 {to}", "Assign {value} of receivable piece #{pieceId} to {to}"],
  RequestFinancing: ["请 {financier} 为凭证 #{pieceId} 中的 {amount} 提供融资，接受年化贴现率至多 {maxDiscountRateBps}（按 365 天计息）、手续费至多 {maxFee}", "Ask {financier} to finance {amount} of piece #{pieceId}, accepting at most {maxDiscountRateBps} a year (365-day basis) and a fee of at most {maxFee}"],
  ApproveFinancing: ["为融资申请 #{requestId} 报价：年化贴现率 {discountRateBps}，手续费 {fee}，{dayCountBasis} 天计息（授信审查 {review}）", "Offer request #{requestId} a discount of {discountRateBps} a year and a fee of {fee} ({dayCountBasis}-day basis; credit review {review})"],
  FundFinancing: ["为融资申请 #{requestId} 放款：以年化 {discountRateBps}、手续费 {fee} 买入 {holder} 的 {amount}", "Fund request #{requestId}: buy {amount} from {holder} at {discountRateBps}, fee {fee}"],
  RecordFinancingRegistration: ["登记融资申请 #{requestId} 的中登网登记：登记编号 {number}，登记日期 {registeredAt}", "Record the 中登网 registration {number} of {registeredAt} of financing request #{requestId}"],
  DeclineFinancing: ["拒绝融资申请 #{requestId}", "Decline request #{requestId}"],
  CancelFinancing: ["撤回融资申请 #{requestId}", "Withdraw request #{requestId}"],
  Repay: ["为应付账款 #{invoiceId} 还款 {amount}", "Pay {amount} towards obligation #{invoiceId}"],
  Redeem: ["兑付凭证 #{pieceId}", "Redeem piece #{pieceId}"],
  ApproveSettlement: ["允许 {spender} 在资金结算中划扣 {amount}", "Allow {spender} to draw {amount} in cash legs"],
  IssueReceipt: ["向 {owner} 开具仓单：{quantity} 件货物，估值 {valuation}，有效期至 {expiry}", "Issue a receipt to {owner} for {quantity} units valued at {valuation}, valid until {expiry}"],
  RevalueReceipt: ["将仓单 #{receiptId} 的货物估值调整为 {valuation}", "Value the goods of receipt #{receiptId} at {valuation}"],
  RequestPledge: ["以仓单 #{receiptId} 质押，向 {financier} 借款 {principal}，年利率 {rateBps}，到期日 {dueDate}", "Ask {financier} to lend {principal} at {rateBps} against receipt #{receiptId}, due {dueDate}"],
  FundPledge: ["以仓单 #{receiptId} 为质押向 {borrower} 放款 {principal}，年利率 {rateBps}，到期日 {dueDate}", "Lend {principal} to {borrower} at {rateBps} against receipt #{receiptId}, due {dueDate}"],
  RecordPledgeRegistration: ["登记质押借款 #{pledgeId} 的中登网登记：登记编号 {number}，登记日期 {registeredAt}", "Record the 中登网 registration {number} of {registeredAt} of pledge #{pledgeId}"],
  DeclinePledge: ["拒绝质押借款 #{pledgeId}", "Decline pledge #{pledgeId}"],
  CancelPledge: ["撤回质押借款 #{pledgeId}", "Withdraw pledge #{pledgeId}"],
  RepayPledge: ["偿还质押借款 #{pledgeId}：{amount}", "Repay {amount} of pledge loan #{pledgeId}"],
  MarkDefaulted: ["作为凭证 #{pieceId} 的持有人，宣告应付账款 #{invoiceId} 违约", "Declare obligation #{invoiceId} defaulted, as holder of piece #{pieceId}"],
  TransferReceipt: ["将仓单 #{receiptId} 转让给 {to}", "Transfer warehouse receipt #{receiptId} to {to}"],
  UpdateGoodsStatus: ["证明仓单 #{receiptId} 的货物状态为 {status}（证明 {attestationHash}）", "Attest the goods of receipt #{receiptId} as status {status} (attestation {attestationHash})"],
  AppointOracle: ["指定 {oracle} 为我的仓单货物估值与状态的证明人", "Appoint {oracle} to attest the value and state of my receipts' goods"],
  EnforcePledge: ["处置逾期质押借款 #{pledgeId}：取得被质押的仓单", "Enforce overdue pledge #{pledgeId}: take the pledged receipt"],
  RequestRedemption: ["申请从仓库提取仓单 #{receiptId} 的货物", "Ask to take the goods of receipt #{receiptId} out of the warehouse"],
  WithdrawRedemption: ["撤回仓单 #{receiptId} 的提货申请", "Withdraw my request to redeem receipt #{receiptId}"],
  ConfirmRedemption: ["确认仓单 #{receiptId} 的货物已交付（仓单注销）", "Confirm the goods of receipt #{receiptId} were handed over (the receipt is burnt)"],
  RotateKey: ["将我的签名密钥更换为 {newSigner}", "Replace my signing key by {newSigner}"],
};

const DEADLINE = ["此签名有效期至 {deadline}", "This signature is valid until {deadline}"];

function date(seconds) {
  return new Date(Number(seconds) * 1000).toISOString().slice(0, 10);
}

function text(hex) {
  const digits = String(hex).replace(/^0x/, "").replace(/(00)+$/, "");
  let out = "";
  for (let i = 0; i < digits.length; i += 2) out += String.fromCharCode(parseInt(digits.slice(i, i + 2), 16));
  return out;
}

function shown(name, value) {
  if (TEXTS.has(name)) return text(value);
  if (MONEY.has(name)) return formatYuan(value);
  if (RATES.has(name)) return formatBps(value);
  if (name === "deadline") return `${new Date(Number(value) * 1000).toISOString().slice(0, 16).replace("T", " ")} UTC`;
  if (DATES.has(name)) return date(value);
  return String(value);
}

function fill(template, message) {
  return template.replace(/\{(\w+)\}/g, (_, name) => (name in message ? shown(name, message[name]) : `{${name}}`));
}

/** The act of ``typedData`` in words, or null for an act type this page does not know (it is then not signed). */
export function actSentence(typedData) {
  const pair = SENTENCES[typedData.primaryType];
  if (!pair) return null;
  const index = language() === "en" ? 1 : 0;
  const main = fill(pair[index], typedData.message);
  if (!("deadline" in typedData.message)) return main;
  return `${main}${index ? ". " : "。"}${fill(DEADLINE[index], typedData.message)}`;
}

export const ACT_NAMES = Object.keys(SENTENCES);
