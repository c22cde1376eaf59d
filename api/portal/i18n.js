// The portal's words in Chinese (the default) and English. Every text a view shows comes from here; a refusal
// of the contracts is explained by the error's name (see ERRORS), never shown as the raw name alone.

const MESSAGES = {
  "zh-CN": {
    "app.title": "供应链金融账本",
    "lang.switch": "English",
    "nav.home": "概览", "nav.invoices": "发票", "nav.receivables": "应收账款凭证", "nav.financing": "融资",
    "nav.obligations": "到期与还款", "nav.participants": "参与方", "nav.cash": "资金存取",
    "nav.receipts": "仓单", "nav.pledges": "仓单质押", "nav.reports": "监管报告", "nav.audit": "审计日志",
    "signin.title": "登录", "signin.apiKey": "API 密钥", "signin.apiKeyHint": "托管参与方：输入平台发放的 API 密钥",
    "signin.submit": "登录", "signin.keystore": "自持密钥文件（加密 keystore）", "signin.password": "密钥文件密码",
    "signin.keystoreSubmit": "用自持密钥登录", "signin.keystoreHint": "密钥只在本页面内解密与使用，不会发送到服务器",
    "signin.wallet": "用浏览器钱包登录", "signin.failed": "登录失败：{reason}", "signin.out": "退出",
    "signin.as": "{name}（{roles}）", "signin.selfCustody": "自持密钥", "signin.hosted": "平台托管密钥",
    "home.balance": "存款代币余额", "home.welcome": "欢迎，{name}", "home.roles": "角色", "home.custody": "密钥托管方式",
    "home.account": "链上账户",
    "op.pending": "已提交，等待区块确认…", "op.confirmed": "已在区块 {block} 确认", "op.refused": "被拒绝：{reason}",
    "op.sign": "请确认并签署", "op.signButton": "签署并提交", "op.cancel": "取消", "op.signedBy": "签署账户 {account}",
    "op.noWallet": "此操作需要您本人签名：请先用自持密钥登录",
    "op.unknownAct": "本页面无法用文字说明此操作，因此不签署",
    "op.awaiting": "已签署，等待复核（{signed}/{threshold}）", "op.approveButton": "以所有人身份签署（复核）",
    "op.approvedBy": "所有人 {owner} 为账户 {account} 签署",
    "op.notSigned": "未签署：{reason}", "op.declined": "钱包中拒绝了签名",
    "nav.approvals": "待复核", "appr.title": "待复核的操作（经办/复核）", "appr.none": "没有待复核的操作",
    "appr.signed": "已签署：{signed}/{threshold}", "appr.approve": "复核并签署", "appr.status": "状态",
    "appr.act": "操作", "appr.relayed": "已提交上链", "appr.expired": "已过期", "appr.awaiting": "等待复核",
    "key.title": "签名密钥", "key.open": "打开签名密钥", "key.file": "签名密钥文件（加密 keystore）",
    "key.password": "签名密钥密码", "key.opened": "已打开签名密钥 {address}（仅在本页面内）",
    "list.state": "状态", "list.all": "全部", "list.filter": "筛选", "list.export": "导出 CSV", "list.next": "下一页",
    "list.prev": "上一页", "list.page": "第 {page} 页，共 {total} 条", "list.counterparty": "交易对手账户", "list.dueFrom": "到期日起", "list.dueTo": "到期日止", "list.pages": "翻页",
    "invoice.register": "登记发票", "invoice.buyer": "买方（核心企业）账户", "invoice.number": "发票号码",
    "invoice.numberHint": "数电票 20 位号码", "invoice.amount": "金额（元）", "invoice.dueDate": "到期日",
    "invoice.file": "发票文件（数电票 XML、PDF 或 OFD）", "invoice.submit": "登记", "invoice.confirm": "确认付款承诺",
    "invoice.reject": "拒绝", "invoice.rejectReason": "拒绝理由", "invoice.list": "发票",
    "invoice.id": "编号", "invoice.seller": "卖方", "invoice.due": "到期日", "invoice.outstanding": "未偿",
    "invoice.none": "暂无发票", "invoice.document": "发票文件",
    "piece.list": "应收账款凭证", "piece.id": "凭证", "piece.owner": "持有人", "piece.value": "金额",
    "piece.lineage": "来源", "piece.root": "原始凭证", "piece.from": "拆自 #{id}", "piece.transfer": "转让/拆分",
    "piece.to": "受让方账户", "piece.amount": "转让金额（元）", "piece.finance": "申请融资", "piece.financier": "资金方账户",
    "piece.financeAmount": "融资金额（元）", "piece.redeem": "到期兑付", "piece.none": "暂无凭证", "piece.send": "提交",
    "fin.list": "融资申请", "fin.id": "申请", "fin.piece": "凭证", "fin.holder": "申请人", "fin.financier": "资金方",
    "fin.obligor": "付款方（核心企业）", "fin.tenor": "剩余期限", "fin.days": "{days} 天（{due} 到期）", "fin.due": "已到期（{due}）",
    "fin.amount": "申请金额", "fin.price": "到账金额", "fin.discount": "贴息", "fin.fee": "手续费",
    "fin.approve": "审批报价", "fin.rate": "年化贴现率（%）", "fin.feeYuan": "手续费（元）", "fin.basis": "计息基准",
    "fin.maxRate": "接受的最高年化贴现率（%，按 365 天计息）", "fin.maxFee": "接受的最高手续费（元）",
    "fin.accepted": "申请人接受：年化至多 {rate}（按 365 天计息），手续费至多 {fee}",
    "fin.review": "授信审查文件（账期超过六个月时必填）",
    "reg.record": "登记中登网登记", "reg.number": "初始登记编号（20 位数字）", "reg.date": "登记日期",
    "reg.invalidNumber": "登记编号为 20 位数字", "reg.invalidDate": "请填写登记日期", "reg.recorded": "中登网登记 {number}（{date}）",
    "fin.fund": "放款", "fin.decline": "拒绝", "fin.cancel": "撤回", "fin.none": "暂无融资申请",
    "fin.quote": "贴息 {discount}，手续费 {fee}，到账 {price}（{rate}，{basis} 天计息）", "fin.tenor": "剩余期限",
    "fin.quoteBefore": "按资金方公布的条件：贴息 {discount}，手续费 {fee}，到账 {price}（年化 {rate}，{basis} 天计息，剩余 {days} 天）",
    "fin.noOffer": "该资金方未公布此核心企业的融资条件：提交后由资金方报价",
    "offer.title": "公布融资条件", "offer.coreFirm": "核心企业账户（可空）", "offer.coreFirmHint": "留空表示适用于所有核心企业",
    "offer.publish": "公布", "offer.published": "已公布：年化 {rate}，手续费 {fee}",
    "nav.portfolio": "资产组合", "port.title": "持有的应收账款", "port.pieces": "凭证数", "port.value": "金额",
    "port.byFirm": "按核心企业（债务人）", "port.byMonth": "按到期月份", "port.firm": "核心企业", "port.month": "到期月份",
    "credit.title": "授信额度", "credit.limit": "额度", "credit.used": "已用", "credit.available": "可用",
    "credit.set": "设定授信额度", "credit.coreFirm": "核心企业账户", "credit.amount": "额度（元）",
    "obl.ladder": "到期阶梯（按周）", "obl.repay": "还款", "obl.amount": "还款金额（元）", "obl.week": "{date} 当周",
    "part.onboard": "接入参与方", "part.name": "名称", "part.code": "统一社会信用代码", "part.roles": "角色",
    "part.submit": "接入", "part.apiKey": "新参与方的 API 密钥（只显示这一次，请妥善保存）：", "part.list": "参与方",
    "part.codeInvalid": "统一社会信用代码校验位不正确", "part.status": "状态",
    "cash.deposit": "存入", "cash.withdraw": "取出", "cash.participant": "参与方账户", "cash.amount": "金额（元）",
    "cash.reference": "银行流水号", "cash.submit": "提交",
    "invalid.amount": "请输入元为单位、最多两位小数的金额", "invalid.invoiceNumber": "数电票号码应为 20 位数字",
    "invalid.dueDate": "到期日须晚于今天，且距今不超过 {days} 天（账本的最长期限）", "invalid.address": "请输入 0x 开头的 40 位十六进制账户",
    "invalid.rate": "请输入百分比，最多两位小数", "invalid.required": "此项必填",
    "error.network": "无法连接服务：{detail}", "error.generic": "操作未完成：{detail}",
    "error.forbidden": "您无权执行此操作", "error.notFound": "未找到", "error.validation": "输入有误：{detail}",
    "error.contract": "账本合约拒绝了此操作（{name}）", "error.unauthorized": "登录已失效，请重新登录",
    "yes": "是", "no": "否", "actions": "操作", "loading": "加载中…",
  },
  en: {
    "app.title": "Supply-chain finance ledger",
    "lang.switch": "中文",
    "nav.home": "Overview", "nav.invoices": "Invoices", "nav.receivables": "Receivables", "nav.financing": "Financing",
    "nav.obligations": "Maturities", "nav.participants": "Participants", "nav.cash": "Cash",
    "nav.receipts": "Warehouse receipts", "nav.pledges": "Pledges", "nav.reports": "Reports", "nav.audit": "Audit log",
    "signin.title": "Sign in", "signin.apiKey": "API key", "signin.apiKeyHint": "Hosted participants: the API key the platform issued",
    "signin.submit": "Sign in", "signin.keystore": "Your own key (encrypted keystore file)", "signin.password": "Keystore password",
    "signin.keystoreSubmit": "Sign in with your key", "signin.keystoreHint": "The key is decrypted and used in this page only; it is never sent",
    "signin.wallet": "Sign in with the browser's wallet", "signin.failed": "Sign-in failed: {reason}", "signin.out": "Sign out",
    "signin.as": "{name} ({roles})", "signin.selfCustody": "self-custody", "signin.hosted": "hosted by the platform",
    "home.balance": "Deposit token balance", "home.welcome": "Welcome, {name}", "home.roles": "Roles", "home.custody": "Key custody",
    "home.account": "Account on chain",
    "op.pending": "Submitted, waiting for its block…", "op.confirmed": "Confirmed in block {block}", "op.refused": "Refused: {reason}",
    "op.sign": "Check and sign", "op.signButton": "Sign and submit", "op.cancel": "Cancel", "op.signedBy": "Signing account {account}",
    "op.noWallet": "This act needs your own signature: sign in with your own key first",
    "op.unknownAct": "This page cannot put this act in words, so it does not sign it",
    "op.awaiting": "Signed; awaiting approval ({signed} of {threshold})", "op.approveButton": "Sign as owner (approve)",
    "op.approvedBy": "Owner {owner} signs for account {account}",
    "op.notSigned": "Not signed: {reason}", "op.declined": "the signature was declined in the wallet",
    "nav.approvals": "Approvals", "appr.title": "Acts awaiting approval (maker/checker)", "appr.none": "Nothing awaits approval",
    "appr.signed": "Signed: {signed} of {threshold}", "appr.approve": "Approve and sign", "appr.status": "Status",
    "appr.act": "Act", "appr.relayed": "relayed to the chain", "appr.expired": "expired", "appr.awaiting": "awaiting approval",
    "key.title": "Signing key", "key.open": "Open signing key", "key.file": "Signing key file (encrypted keystore)",
    "key.password": "Signing key password", "key.opened": "Signing key {address} is open (in this page only)",
    "list.state": "State", "list.all": "All", "list.filter": "Filter", "list.export": "Export CSV", "list.next": "Next page",
    "list.prev": "Previous page", "list.page": "Page {page} of {total} items", "list.counterparty": "Counterparty account", "list.dueFrom": "Due from", "list.dueTo": "Due to", "list.pages": "Pages",
    "invoice.register": "Register an invoice", "invoice.buyer": "Buyer (core firm) account", "invoice.number": "Invoice number",
    "invoice.numberHint": "20 digits of a fully digitalised e-invoice", "invoice.amount": "Amount (yuan)", "invoice.dueDate": "Due date",
    "invoice.file": "Invoice file (e-invoice XML, PDF or OFD)", "invoice.submit": "Register", "invoice.confirm": "Confirm the payment undertaking",
    "invoice.reject": "Reject", "invoice.rejectReason": "Reason for rejecting", "invoice.list": "Invoices",
    "invoice.id": "Id", "invoice.seller": "Seller", "invoice.due": "Due", "invoice.outstanding": "Outstanding",
    "invoice.none": "No invoices yet", "invoice.document": "Invoice file",
    "piece.list": "Receivable pieces", "piece.id": "Piece", "piece.owner": "Holder", "piece.value": "Value",
    "piece.lineage": "Lineage", "piece.root": "original", "piece.from": "split from #{id}", "piece.transfer": "Transfer / split",
    "piece.to": "Recipient account", "piece.amount": "Amount to transfer (yuan)", "piece.finance": "Request financing", "piece.financier": "Financier account",
    "piece.financeAmount": "Amount to finance (yuan)", "piece.redeem": "Redeem at maturity", "piece.none": "No pieces yet", "piece.send": "Submit",
    "fin.list": "Financing requests", "fin.id": "Request", "fin.piece": "Piece", "fin.holder": "Holder", "fin.financier": "Financier",
    "fin.obligor": "Obligor (core firm)", "fin.tenor": "Remaining tenor", "fin.days": "{days} days (due {due})", "fin.due": "Due ({due})",
    "fin.amount": "Amount", "fin.price": "Paid out", "fin.discount": "Discount", "fin.fee": "Fee",
    "fin.approve": "Approve with terms", "fin.rate": "Annual discount rate (%)", "fin.feeYuan": "Fee (yuan)", "fin.basis": "Day count",
    "fin.maxRate": "Highest discount rate accepted (% a year, 365-day basis)", "fin.maxFee": "Highest fee accepted (yuan)",
    "fin.accepted": "The holder accepts at most {rate} a year (365-day basis) and a fee of at most {fee}",
    "fin.review": "Credit review document (required beyond six months)",
    "reg.record": "Record the 中登网 registration", "reg.number": "Initial registration number (20 digits)", "reg.date": "Registration date",
    "reg.invalidNumber": "A registration number is 20 digits", "reg.invalidDate": "The registration's date", "reg.recorded": "中登网 registration {number} ({date})",
    "fin.fund": "Fund", "fin.decline": "Decline", "fin.cancel": "Withdraw", "fin.none": "No financing requests",
    "fin.quote": "discount {discount}, fee {fee}, paid out {price} ({rate}, {basis}-day basis)", "fin.tenor": "Remaining tenor",
    "fin.quoteBefore": "At the financier's published terms: discount {discount}, fee {fee}, you receive {price} ({rate} a year, {basis}-day basis, {days} days left)",
    "fin.noOffer": "This financier published no terms for this core firm: it will price the request once asked",
    "offer.title": "Publish standing terms", "offer.coreFirm": "Core firm account (optional)", "offer.coreFirmHint": "Empty: for every core firm",
    "offer.publish": "Publish", "offer.published": "Published: {rate} a year, fee {fee}",
    "nav.portfolio": "Portfolio", "port.title": "Receivables held", "port.pieces": "Pieces", "port.value": "Value",
    "port.byFirm": "By core firm (obligor)", "port.byMonth": "By month of maturity", "port.firm": "Core firm", "port.month": "Month due",
    "credit.title": "Credit line", "credit.limit": "Limit", "credit.used": "Used", "credit.available": "Available",
    "credit.set": "Set a credit line", "credit.coreFirm": "Core firm account", "credit.amount": "Limit (yuan)",
    "obl.ladder": "Maturity ladder (by week)", "obl.repay": "Repay", "obl.amount": "Amount to repay (yuan)", "obl.week": "week of {date}",
    "part.onboard": "Onboard a participant", "part.name": "Name", "part.code": "Unified social credit code", "part.roles": "Role",
    "part.submit": "Onboard", "part.apiKey": "The new participant's API key (shown this once only; keep it safe):", "part.list": "Participants",
    "part.codeInvalid": "The credit code's check character is wrong", "part.status": "Status",
    "cash.deposit": "Deposit", "cash.withdraw": "Withdraw", "cash.participant": "Participant account", "cash.amount": "Amount (yuan)",
    "cash.reference": "Bank reference", "cash.submit": "Submit",
    "invalid.amount": "Enter an amount in yuan with at most two decimals", "invalid.invoiceNumber": "A fully digitalised e-invoice number has 20 digits",
    "invalid.dueDate": "The due date must be after today and at most {days} days away (the ledger's longest tenor)", "invalid.address": "Enter an account: 0x and 40 hexadecimal digits",
    "invalid.rate": "Enter a percentage with at most two decimals", "invalid.required": "Required",
    "error.network": "The service cannot be reached: {detail}", "error.generic": "Not done: {detail}",
    "error.forbidden": "You may not do this", "error.notFound": "Not found", "error.validation": "Check the input: {detail}",
    "error.contract": "The ledger's contracts refused this ({name})", "error.unauthorized": "Your sign-in has expired: sign in again",
    "yes": "yes", "no": "no", "actions": "Actions", "loading": "Loading…",
  },
};

/** The contracts' refusals in words, by error name: [Chinese, English]. Errors not listed here are explained
 * by their contract and the service's own sentence (error.contract + detail). */
const ERRORS = {
  ReceivablesCreditLineExceeded: ["超出核心企业的授信额度，无法确认", "This would exceed the core firm's credit line"],
  ReceivablesInvoiceAlreadyRegistered: ["该发票已登记过，不能重复登记", "This invoice is already registered"],
  ReceivablesDueDateNotInFuture: ["到期日必须晚于今天", "The due date must be in the future"],
  ReceivablesTenorTooLong: ["账期超过允许的最长期限", "The tenor is longer than the rules allow"],
  ReceivablesNotBuyer: ["只有发票的买方可以确认或拒绝", "Only the invoice's buyer may confirm or reject it"],
  ReceivablesInvalidTransition: ["发票当前状态不允许此操作", "The invoice's state does not allow this"],
  ReceivablesInsufficientValue: ["凭证余额不足", "The piece holds less than that"],
  ReceivablesNotHolder: ["您不是该凭证的持有人", "You do not hold this piece"],
  ReceivablesPieceLocked: ["该凭证正在融资中，已被锁定", "The piece is locked by a financing request"],
  ReceivablesPieceFrozen: ["该凭证已被监管冻结", "The piece is frozen by the regulator"],
  ReceivablesMatured: ["凭证已到期，不能再转让或融资", "The piece has matured: it can no longer be transferred or financed"],
  ReceivablesSelfTransfer: ["不能转让给自己", "You cannot transfer to yourself"],
  ReceivablesSelfBilling: ["买方与卖方不能相同", "Buyer and seller must differ"],
  ReceivablesSelfFinancing: ["不能向自己申请融资", "You cannot finance with yourself"],
  ReceivablesZeroAmount: ["金额必须大于零", "The amount must be more than zero"],
  ReceivablesInvalidReceiver: ["受让方不是可以持有凭证的参与方", "The recipient may not hold receivables"],
  ReceivablesNotFinancier: ["只有申请中指定的资金方可以操作", "Only the request's financier may do this"],
  ReceivablesRequestInvalidTransition: ["融资申请当前状态不允许此操作", "The financing request's state does not allow this"],
  ReceivablesInvalidTerms: ["融资条件无效", "The financing terms are not valid"],
  ReceivablesPriceNotPositive: ["贴息和手续费后到账金额须大于零", "After discount and fee nothing would be paid out"],
  ReceivablesTermsAboveAccepted: ["报价高于融资申请接受的贴现率或手续费上限", "The terms are above the rate or fee the request accepted"],
  ReceivablesFinancingReviewRequired: ["账期超过六个月（规则的审查期限）：资金方须附授信审查记录方可融资", "The receivable runs longer than the review tenor (six months): the financier must record its credit review to finance it"],
  ReceivablesRequestNotFunded: ["只有已放款的融资可以记录登记", "Only a funded financing is registered"],
  ReceivablesFinancingAlreadyRegistered: ["该笔融资的中登网登记已记录，不能重复记录", "This financing's registration was recorded already"],
  ReceivablesInvalidRegistration: ["登记编号须为 20 位数字，登记日期不能晚于今天", "A registration number has 20 digits and its date cannot be after today"],
  ReceivablesRegisteredElsewhere: ["该应收账款已由另一资金方在中登网登记，不能再由其他资金方融资", "This receivable is registered by another financier: no other financier may finance it"],
  ReceivablesNothingToRedeem: ["没有可兑付的金额", "There is nothing to redeem"],
  ReceivablesOverpayment: ["还款金额超过未偿金额", "The repayment is more than what is owed"],
  ReceivablesCurrencyMismatch: ["币种不符", "The currency does not match"],
  ReceiptAlreadyPledged: ["该仓单已被质押，不能重复质押", "This receipt is already pledged"],
  ReceiptLotAlreadyReceipted: ["该货物批次已开具仓单", "A receipt was already issued for this lot"],
  ReceiptGoodsNotSound: ["货物状态异常，不能质押或转让", "The goods are not sound: the receipt cannot be pledged or transferred"],
  ReceiptExpired: ["仓单已过期", "The receipt has expired"],
  ReceiptNotOwner: ["您不是该仓单的持有人", "You do not hold this receipt"],
  PledgeExceedsAdvanceLimit: ["借款金额超过质押率允许的上限", "The loan is more than the advance rate allows"],
  PledgeRepaymentExceedsDebt: ["还款金额超过欠款", "The repayment is more than the debt"],
  PledgeNotDue: ["贷款尚未到期", "The loan is not due yet"],
  DepositMintReferenceUsed: ["该银行流水号已入账，不能重复存入", "This bank reference was already deposited"],
  DepositBurnReferenceUsed: ["该银行流水号已用于取出", "This bank reference was already withdrawn"],
  ERC20InsufficientBalance: ["存款代币余额不足", "The deposit token balance is too low"],
  RegistryParticipantFrozen: ["该参与方已被监管冻结", "The participant is frozen by the regulator"],
  RegistryParticipantNotActive: ["该参与方已暂停", "The participant is suspended"],
  RegistryMissingRole: ["该账户没有此操作所需的角色", "The account lacks the role this needs"],
  RegistryAlreadyRegistered: ["该参与方已接入", "The participant is already onboarded"],
  RegistrySignedActsOnly: ["自持密钥的参与方只能以本人签名的方式操作", "A self-custody participant acts only by its own signature"],
  SignedActsInvalidSignature: ["签名无效或签名人数不足", "The signature is not valid, or too few owners signed"],
  SignedActsExpired: ["签名已过期，请重新签署", "The signature has expired: sign again"],
  SignedActsNonceUsed: ["该签名已被使用过", "This signature was already used"],
};

const ROLES = {
  "operator": ["平台运营方", "Operator"], "core-firm": ["核心企业", "Core firm"], "supplier": ["供应商", "Supplier"],
  "financier": ["资金方", "Financier"], "warehouse": ["仓储方", "Warehouse"], "regulator": ["监管方", "Regulator"],
  "settlement-agent": ["结算代理行", "Settlement agent"],
};

const STATES = {
  registered: ["待确认", "awaiting confirmation"], confirmed: ["已确认", "confirmed"], rejected: ["已拒绝", "rejected"],
  settled: ["已结清", "settled"], defaulted: ["已违约", "defaulted"], requested: ["已申请", "requested"],
  approved: ["已报价", "approved"], funded: ["已放款", "funded"], declined: ["已拒绝", "declined"],
  cancelled: ["已撤回", "withdrawn"], active: ["有效", "active"], pending: ["处理中", "pending"],
  issued: ["已开具", "issued"], pledged: ["已质押", "pledged"], redeemed: ["已兑付", "redeemed"],
  repaid: ["已还清", "repaid"], enforced: ["已处置", "enforced"], suspended: ["已暂停", "suspended"],
};

/** Add a page module's own words: ``messages`` as {"zh-CN": {...}, en: {...}}, ``errors`` and ``states`` as
 * {name: [Chinese, English]}. */
export function register({ messages = {}, errors = {}, states = {} } = {}) {
  for (const lang of Object.keys(MESSAGES)) Object.assign(MESSAGES[lang], messages[lang] ?? {});
  Object.assign(ERRORS, errors);
  Object.assign(STATES, states);
}

let current = localStorage.getItem("scf.lang") === "en" ? "en" : "zh-CN";

export function language() {
  return current;
}

export function setLanguage(lang) {
  current = lang === "en" ? "en" : "zh-CN";
  localStorage.setItem("scf.lang", current);
  document.documentElement.lang = current;
}

function pick(pair) {
  return current === "en" ? pair[1] : pair[0];
}

/** The text of ``key`` in the current language, with {name} replaced from ``params``. */
export function t(key, params = {}) {
  const text = MESSAGES[current][key] ?? MESSAGES["zh-CN"][key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in params ? String(params[name]) : `{${name}}`));
}

export function roleName(role) {
  return ROLES[role] ? pick(ROLES[role]) : role;
}

export function stateName(state) {
  return STATES[state] ? pick(STATES[state]) : state;
}

/** A problem answer of the API (RFC 9457 JSON) in the user's words. */
export function explain(problem) {
  if (!problem || typeof problem !== "object") return t("error.generic", { detail: String(problem) });
  if (problem.error && ERRORS[problem.error]) return pick(ERRORS[problem.error]);
  if (problem.error) return `${t("error.contract", { name: problem.error })}: ${problem.detail ?? ""}`.trim();
  if (problem.status === 401) return t("error.unauthorized");
  if (problem.status === 403) return `${t("error.forbidden")}: ${problem.detail ?? problem.title ?? ""}`;
  if (problem.status === 404) return `${t("error.notFound")}: ${problem.detail ?? ""}`;
  if (problem.status === 422 || problem.status === 400) {
    const details = (problem.errors ?? []).map((error) => `${(error.loc ?? []).slice(1).join(".")}: ${error.msg}`);
    return t("error.validation", { detail: details.join("; ") || problem.detail || problem.title });
  }
  return t("error.generic", { detail: problem.detail ?? problem.title ?? problem.status });
}
