// The invoice form filled from the invoice file: a 全面数字化电子发票 (数电票) in its XML form, or an OFD invoice
// (ofd.js: the archive's attached XML or its custom tags), is read here, in the page (DOMParser and the browser's
// DecompressionStream, no library), and its number and tax-included total (价税合计) fill the form; its seller's
// and buyer's unified social credit codes, names and issue date are shown and checked before anything is sent. A
// PDF is uploaded as the invoice's document only: its text layer has no structure to read fields from reliably
// (the tax authority issues the same invoice as XML and OFD, which do).
//
// The layout read (the tax authority's XML of a 数电票):
//   <EInvoice>
//     <Header><EIid>20 digits</EIid><InherentLabel>…</InherentLabel></Header>
//     <EInvoiceData>
//       <SellerInformation><SellerIdNum>credit code</SellerIdNum><SellerName>…</SellerName>…</SellerInformation>
//       <BuyerInformation><BuyerIdNum>credit code</BuyerIdNum><BuyerName>…</BuyerName>…</BuyerInformation>
//       <BasicInformation><TotalAmWithoutTax/><TotalTaxAm/><TotalTax-includedAmount>1000000.12</…><RequestTime/></…>
//       <IssuItemInformation>…</IssuItemInformation>…
//     </EInvoiceData>
//     <TaxSupervisionInfo><InvoiceNumber>20 digits</InvoiceNumber><IssueTime>YYYY-MM-DD…</IssueTime></TaxSupervisionInfo>
//   </EInvoice>
import { h } from "./dom.js";
import { language, register, t } from "./i18n.js";
import { creditCodeValid } from "./identifiers.js";
import { formatYuan, parseYuan, yuanText } from "./money.js";
import { readOfd } from "./ofd.js";

register({
  messages: {
    "zh-CN": {
      "ei.title": "从发票文件读取的内容", "ei.number": "发票号码", "ei.amount": "价税合计", "ei.issued": "开票日期",
      "ei.seller": "销售方", "ei.buyer": "购买方", "ei.party": "{name}（统一社会信用代码 {code}）",
      "ei.reading": "正在读取发票文件…", "ei.uploadOnly": "PDF 等文件只作为发票文件上传，不从中读取字段（数电票 XML 与 OFD 文件可自动填写）",
      "ei.ofdEmpty": "此 OFD 文件中没有发票字段，只作为发票文件上传",
      "ei.notEInvoice": "此 XML 文件不是数电票（根元素应为 EInvoice），只作为发票文件上传",
      "ei.unreadable": "发票文件无法读取：{reason}",
      "ei.buyerHint": "发票上的购买方：{name}，统一社会信用代码 {code}。平台不向供应商显示其他参与方的信息，请核对此账户确属该购买方",
      "ei.badNumber": "发票文件中的号码“{number}”不是 20 位数字", "ei.numbersDiffer": "发票文件中的两个号码不一致：{eiid} 与 {number}",
      "ei.badAmount": "发票文件中的价税合计“{amount}”不是最多两位小数的金额",
      "ei.redInvoice": "这是红字发票（价税合计 {amount}），不能登记为应收账款",
      "ei.badSellerCode": "销售方统一社会信用代码 {code} 的校验位不正确", "ei.badBuyerCode": "购买方统一社会信用代码 {code} 的校验位不正确",
      "ei.notYours": "发票的销售方（{code}）不是您（{mine}）：只能登记本企业开具的发票",
      "ei.numberEdited": "发票号码与发票文件（{number}）不一致", "ei.amountEdited": "金额与发票文件的价税合计（{amount}）不一致",
      "ei.dueBeforeIssue": "到期日须晚于开票日期 {issued}",
    },
    en: {
      "ei.title": "Read from the invoice file", "ei.number": "Invoice number", "ei.amount": "Total including tax", "ei.issued": "Issued on",
      "ei.seller": "Seller", "ei.buyer": "Buyer", "ei.party": "{name} (unified social credit code {code})",
      "ei.reading": "Reading the invoice file…", "ei.uploadOnly": "PDF and other files are uploaded as the invoice's document; no field is read from them (e-invoice XML and OFD files fill the form)",
      "ei.ofdEmpty": "This OFD file holds no invoice fields; it is uploaded as the document only",
      "ei.notEInvoice": "This XML file is not a fully digitalised e-invoice (its root should be EInvoice); it is uploaded as the document only",
      "ei.unreadable": "The invoice file cannot be read: {reason}",
      "ei.buyerHint": "The buyer on the invoice: {name}, unified social credit code {code}. The platform does not show other participants to a supplier: check that this account is that buyer's",
      "ei.badNumber": "The number in the invoice file, \"{number}\", is not 20 digits", "ei.numbersDiffer": "The invoice file's two numbers differ: {eiid} and {number}",
      "ei.badAmount": "The total in the invoice file, \"{amount}\", is not an amount with at most two decimals",
      "ei.redInvoice": "This is a red-letter (credit) invoice (total {amount}); it cannot be registered as a receivable",
      "ei.badSellerCode": "The seller's unified social credit code {code} has a wrong check character", "ei.badBuyerCode": "The buyer's unified social credit code {code} has a wrong check character",
      "ei.notYours": "The invoice's seller ({code}) is not you ({mine}): only invoices you issued can be registered",
      "ei.numberEdited": "The invoice number differs from the invoice file's ({number})", "ei.amountEdited": "The amount differs from the invoice file's total ({amount})",
      "ei.dueBeforeIssue": "The due date must be after the invoice's issue date, {issued}",
    },
  },
});

const NUMBER = /^[0-9]{20}$/;
const DECIMAL = /^(-?)([0-9]+)(?:\.([0-9]{1,2}))?$/;
const DATE = /^([0-9]{4}-[0-9]{2}-[0-9]{2})/;

/** A decimal amount of the file ("1000000.12", "-50.00") as BigInt fen, digit by digit; null otherwise (a third
 * decimal is refused, never rounded). */
export function decimalFen(text) {
  const match = DECIMAL.exec(text);
  if (!match) return null;
  const fen = BigInt(match[2]) * 100n + BigInt((match[3] ?? "").padEnd(2, "0"));
  return match[1] ? -fen : fen;
}

/** The text of the element at ``path`` under ``root`` ("EInvoiceData/SellerInformation/SellerIdNum"), matched by
 * local name child by child (a namespace prefix does not matter); "" when it is not there. */
function textAt(root, path) {
  let node = root;
  for (const name of path.split("/")) {
    node = Array.from(node.children).find((child) => child.localName === name);
    if (!node) return "";
  }
  return node.textContent.trim();
}

/** A 数电票's XML text read: {number, eiid, amountText, amount (BigInt fen or null), issued (YYYY-MM-DD or ""),
 * seller: {code, name}, buyer: {code, name}}; null when the text is not such a document; throws on XML that does
 * not parse. */
export function readEInvoice(text) {
  const document = new DOMParser().parseFromString(text, "application/xml");
  const failure = document.getElementsByTagName("parsererror")[0];
  if (failure) throw new Error(failure.textContent.trim().split("\n")[0]);
  const root = document.documentElement;
  if (root.localName !== "EInvoice") return null;
  const eiid = textAt(root, "Header/EIid");
  const amountText = textAt(root, "EInvoiceData/BasicInformation/TotalTax-includedAmount");
  const issuedText = textAt(root, "TaxSupervisionInfo/IssueTime") || textAt(root, "EInvoiceData/BasicInformation/RequestTime");
  return {
    number: textAt(root, "TaxSupervisionInfo/InvoiceNumber") || eiid,
    eiid,
    amountText,
    amount: decimalFen(amountText),
    issued: DATE.exec(issuedText)?.[1] ?? "",
    seller: { code: textAt(root, "EInvoiceData/SellerInformation/SellerIdNum"), name: textAt(root, "EInvoiceData/SellerInformation/SellerName") },
    buyer: { code: textAt(root, "EInvoiceData/BuyerInformation/BuyerIdNum"), name: textAt(root, "EInvoiceData/BuyerInformation/BuyerName") },
  };
}

/** What is wrong with the invoice read from the file, for the signed-in participant ``me``: texts in the user's
 * language (empty when nothing is). */
export function invoiceProblems(invoice, me) {
  const problems = [];
  if (!NUMBER.test(invoice.number)) problems.push(t("ei.badNumber", { number: invoice.number }));
  else if (invoice.eiid && invoice.eiid !== invoice.number) problems.push(t("ei.numbersDiffer", { eiid: invoice.eiid, number: invoice.number }));
  if (invoice.amount === null) problems.push(t("ei.badAmount", { amount: invoice.amountText }));
  else if (invoice.amount <= 0n) problems.push(t("ei.redInvoice", { amount: formatYuan(invoice.amount) }));
  if (!creditCodeValid(invoice.seller.code)) problems.push(t("ei.badSellerCode", { code: invoice.seller.code }));
  else if (invoice.seller.code !== me.credit_code) problems.push(t("ei.notYours", { code: invoice.seller.code, mine: me.credit_code }));
  if (!creditCodeValid(invoice.buyer.code)) problems.push(t("ei.badBuyerCode", { code: invoice.buyer.code }));
  return problems;
}

/** The file's bytes as text, in the encoding its XML declaration names (UTF-8 when it names none; a GB18030 or
 * GBK file is decoded as such). */
async function xmlText(file) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const declared = /encoding=["']([A-Za-z0-9_-]+)["']/.exec(new TextDecoder("latin1").decode(bytes.slice(0, 200)));
  try {
    return new TextDecoder(declared ? declared[1] : "utf-8", { fatal: true }).decode(bytes);
  } catch {
    return new TextDecoder("utf-8").decode(bytes);
  }
}

const isXml = (file) => /\.xml$/i.test(file.name) || /\/xml$/.test(file.type);
const isOfd = (file) => /\.ofd$/i.test(file.name) || file.type === "application/ofd";

/** The invoice read from an OFD file (with its amount in fen), or null when the archive holds no invoice fields. */
async function ofdInvoice(file) {
  const invoice = await readOfd(new Uint8Array(await file.arrayBuffer()), readEInvoice);
  return invoice && "amount" in invoice ? invoice : invoice && { ...invoice, amount: decimalFen(invoice.amountText) };
}

/** What the file of each form gave: {reading} while it is read, {invoice, problems} once read, absent otherwise. */
const readings = new WeakMap();

/** Fill the invoice form ``element`` from the file chosen in it (its ``file`` input) and show what was read: the
 * invoice number and the amount go into their fields; the parties, their codes and the issue date are shown, the
 * buyer's next to the account field. */
export function fillFromInvoiceFile(ctx, element) {
  const input = element.querySelector("[name=file]");
  const panel = h("div", { class: "einvoice", id: "einvoice-read", role: "status", hidden: true });
  const buyerHint = h("small", { class: "hint", id: "einvoice-buyer", hidden: true });
  input.closest(".field").after(panel);
  element.querySelector("[name=buyer]").closest(".field").append(buyerHint);
  const show = (...children) => {
    const shown = children.filter(Boolean);
    panel.hidden = !shown.length;
    panel.replaceChildren(...shown);
  };
  input.addEventListener("change", async () => {
    readings.delete(element);
    buyerHint.hidden = true;
    const file = input.files[0];
    if (!file) return show();
    const ofd = isOfd(file);
    if (!isXml(file) && !ofd) return show(h("p", { class: "hint" }, t("ei.uploadOnly")));
    const reading = {};
    readings.set(element, reading);
    show(h("p", {}, t("ei.reading")));
    let invoice;
    try {
      invoice = ofd ? await ofdInvoice(file) : readEInvoice(await xmlText(file));
    } catch (error) {
      reading.problems = [t("ei.unreadable", { reason: error.message })];
      return show(h("p", { class: "error", role: "alert" }, reading.problems[0]));
    } finally {
      reading.done = true;
    }
    if (readings.get(element) !== reading) return; // another file was chosen meanwhile
    if (!invoice) {
      readings.delete(element);
      return show(h("p", { class: "hint" }, t(ofd ? "ei.ofdEmpty" : "ei.notEInvoice")));
    }
    reading.invoice = invoice;
    reading.problems = invoiceProblems(invoice, ctx.me);
    element.querySelector("[name=invoice_number]").value = invoice.number;
    if (invoice.amount !== null && invoice.amount > 0n) element.querySelector("[name=amount]").value = yuanText(invoice.amount);
    const party = (who) => t("ei.party", { name: who.name || "-", code: who.code || "-" });
    buyerHint.textContent = t("ei.buyerHint", { name: invoice.buyer.name || "-", code: invoice.buyer.code || "-" });
    buyerHint.hidden = false;
    show(
      h("h3", {}, t("ei.title")),
      h("dl", { class: "facts" },
        h("dt", {}, t("ei.number")), h("dd", { "data-read": "number" }, invoice.number),
        h("dt", {}, t("ei.amount")), h("dd", { "data-read": "amount" }, invoice.amount === null ? invoice.amountText : formatYuan(invoice.amount)),
        h("dt", {}, t("ei.issued")), h("dd", { "data-read": "issued" }, invoice.issued || "-"),
        h("dt", {}, t("ei.seller")), h("dd", { "data-read": "seller" }, party(invoice.seller)),
        h("dt", {}, t("ei.buyer")), h("dd", { "data-read": "buyer" }, party(invoice.buyer))),
      reading.problems.length
        ? h("ul", { class: "error", role: "alert", id: "einvoice-problems" }, reading.problems.map((problem) => h("li", {}, problem)))
        : null);
  });
}

/** Why the form ``element`` may not be sent as far as its invoice file goes (a text), or null: the file is still
 * being read, what it holds is wrong, or the form no longer says what the file says. */
export function invoiceFileProblem(element) {
  const reading = readings.get(element);
  if (!reading) return null;
  if (!reading.done) return t("ei.reading");
  if (reading.problems.length) return reading.problems.join(language() === "en" ? "; " : "；");
  const { invoice } = reading;
  const value = (name) => element.querySelector(`[name=${name}]`).value.trim();
  if (value("invoice_number") !== invoice.number) return t("ei.numberEdited", { number: invoice.number });
  if (parseYuan(value("amount")) !== invoice.amount) return t("ei.amountEdited", { amount: formatYuan(invoice.amount) });
  if (invoice.issued && value("due_date") && value("due_date") <= invoice.issued) return t("ei.dueBeforeIssue", { issued: invoice.issued });
  return null;
}
