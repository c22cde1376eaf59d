// An OFD invoice file read in the page. OFD (GB/T 33190, the fixed-layout format China's tax authority issues
// e-invoices in) is a ZIP archive of XML parts; the invoice's fields are in one of three places, tried in order:
//
//   1. an attached 数电票 XML (root <EInvoice>, the tax authority's layout that einvoice.js reads);
//   2. an attached invoice data file (root <eInvoice>, the e-invoice schema of http://www.edrm.org.cn/schema/
//      e-invoice/2019: <InvoiceNo>, <IssueDate>, <Buyer><BuyerName/><BuyerTaxID/></Buyer>, <Seller>…</Seller>,
//      <TaxInclusiveTotalAmount>);
//   3. the document's custom tags (Doc_N/Tags/…: the same element names, each holding an <ObjectRef> to the text
//      object of the page that shows the value), resolved against the pages' <TextObject ID="…"><TextCode>.
//
// The archive is read with the browser's own DecompressionStream ("deflate-raw"), no library: ZIP entries
// stored (method 0) or deflated (method 8), no ZIP64 (an invoice is a few hundred kilobytes), only the XML
// parts inflated, each at most MAX_PART bytes, so a hostile archive cannot fill the page's memory.

const END_OF_DIRECTORY = 0x06054b50;
const DIRECTORY_ENTRY = 0x02014b50;
const LOCAL_HEADER = 0x04034b50;
const MAX_PART = 4 * 1024 * 1024;
const MAX_ENTRIES = 2000;

/** The entries of the ZIP archive ``bytes`` (a Uint8Array): a Map of name → {method, data (still compressed)};
 * throws an Error saying why when the bytes are not a ZIP archive this reader can read. */
export function zipEntries(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = -1;
  for (let at = bytes.length - 22; at >= Math.max(0, bytes.length - 22 - 0xffff); at -= 1) {
    if (view.getUint32(at, true) === END_OF_DIRECTORY) {
      end = at;
      break;
    }
  }
  if (end < 0) throw new Error("not a ZIP archive");
  const count = view.getUint16(end + 10, true);
  let at = view.getUint32(end + 16, true);
  if (count === 0xffff || at === 0xffffffff) throw new Error("ZIP64 archives are not read");
  if (count > MAX_ENTRIES) throw new Error(`${count} parts, more than ${MAX_ENTRIES}`);
  const names = new TextDecoder("utf-8");
  const entries = new Map();
  for (let index = 0; index < count; index += 1) {
    if (at + 46 > bytes.length || view.getUint32(at, true) !== DIRECTORY_ENTRY) throw new Error("damaged ZIP directory");
    const method = view.getUint16(at + 10, true);
    const size = view.getUint32(at + 20, true);
    const nameLength = view.getUint16(at + 28, true);
    const local = view.getUint32(at + 42, true);
    const name = names.decode(bytes.subarray(at + 46, at + 46 + nameLength)).replace(/^\/+/, "");
    at += 46 + nameLength + view.getUint16(at + 30, true) + view.getUint16(at + 32, true);
    if (local + 30 > bytes.length || view.getUint32(local, true) !== LOCAL_HEADER) throw new Error(`damaged ZIP part ${name}`);
    const start = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    if (start + size > bytes.length) throw new Error(`ZIP part ${name} runs past the end of the file`);
    entries.set(name, { method, data: bytes.subarray(start, start + size) });
  }
  return entries;
}

/** An entry's bytes, inflated; throws past MAX_PART bytes or for a compression method other than 0 or 8. */
async function inflate(name, entry) {
  if (entry.method === 0) return entry.data;
  if (entry.method !== 8) throw new Error(`ZIP part ${name} uses compression method ${entry.method}`);
  const reader = new Blob([entry.data]).stream().pipeThrough(new DecompressionStream("deflate-raw")).getReader();
  const chunks = [];
  let length = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    length += value.length;
    if (length > MAX_PART) {
      await reader.cancel();
      throw new Error(`ZIP part ${name} inflates past ${MAX_PART} bytes`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

/** The first element under ``root`` (itself included) whose local name is ``name``, depth first; null if none. */
function find(root, name) {
  if (root.localName === name) return root;
  for (const child of root.children) {
    const found = find(child, name);
    if (found) return found;
  }
  return null;
}

/** A date as the invoice prints it ("2026年12月01日", "2026-12-01", "2026-12-01 10:15:32") as YYYY-MM-DD, or "". */
export function isoDate(text) {
  const match = /([0-9]{4})\s*[年\-./]\s*([0-9]{1,2})\s*[月\-./]\s*([0-9]{1,2})/.exec(text);
  return match ? `${match[1]}-${match[2].padStart(2, "0")}-${match[3].padStart(2, "0")}` : "";
}

/** An amount as the invoice prints it ("¥1,000,000.28", "￥1000000.28") with its currency sign, spaces and
 * thousands separators taken off; the digits themselves are left for decimalFen to accept or refuse. */
export function amountText(text) {
  return text.replace(/[¥￥,，\s]/g, "").replace(/^(RMB|CNY)/i, "");
}

/** The invoice fields of an OFD file's bytes, in einvoice.js's shape ({number, eiid, amountText, issued, seller,
 * buyer}, amount left to the caller), or null when the archive holds none; ``readXml`` parses a 数电票 XML text
 * (einvoice.js's readEInvoice). Throws an Error saying why when the file is not an OFD archive this reads. */
export async function readOfd(bytes, readXml) {
  const entries = zipEntries(bytes);
  if (![...entries.keys()].some((name) => /^OFD\.xml$/i.test(name))) throw new Error("no OFD.xml: not an OFD file");
  const parser = new DOMParser();
  const utf8 = new TextDecoder("utf-8");
  const parts = [];
  for (const [name, entry] of entries) {
    if (!/\.xml$/i.test(name)) continue;
    const text = utf8.decode(await inflate(name, entry));
    const document = parser.parseFromString(text, "application/xml");
    if (document.getElementsByTagName("parsererror")[0]) continue; // a damaged part does not hide the others
    parts.push({ name, text, root: document.documentElement });
  }

  // 1. An attached 数电票 XML.
  const einvoice = parts.find((part) => part.root.localName === "EInvoice");
  if (einvoice) return readXml(einvoice.text);

  const fields = (valueOf) => {
    const value = (name) => valueOf(name).trim();
    const number = value("InvoiceNo");
    const total = value("TaxInclusiveTotalAmount");
    if (!number && !total) return null;
    return {
      number,
      eiid: "",
      amountText: amountText(total),
      issued: isoDate(value("IssueDate")),
      seller: { code: value("SellerTaxID").toUpperCase(), name: value("SellerName") },
      buyer: { code: value("BuyerTaxID").toUpperCase(), name: value("BuyerName") },
    };
  };

  // 2. An attached invoice data file, the values in its elements.
  for (const part of parts.filter((part) => part.root.localName === "eInvoice")) {
    const invoice = fields((name) => {
      const element = find(part.root, name);
      return element && !find(element, "ObjectRef") ? element.textContent : "";
    });
    if (invoice) return invoice;
  }

  // 3. Custom tags pointing at the text objects of the pages.
  const texts = new Map();
  for (const part of parts) {
    for (const object of part.root.getElementsByTagNameNS("*", "TextObject")) {
      const codes = Array.from(object.children).filter((child) => child.localName === "TextCode");
      texts.set(`${part.name.split("/")[0]}#${object.getAttribute("ID")}`, codes.map((code) => code.textContent).join(""));
    }
  }
  for (const part of parts.filter((part) => /\/Tags\//i.test(part.name))) {
    const doc = part.name.split("/")[0];
    const invoice = fields((name) => {
      const element = find(part.root, name);
      if (!element) return "";
      const refs = Array.from(element.getElementsByTagNameNS("*", "ObjectRef"));
      return refs.map((ref) => texts.get(`${doc}#${ref.textContent.trim()}`) ?? "").join("");
    });
    if (invoice) return invoice;
  }
  return null;
}
