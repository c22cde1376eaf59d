// Money on the portal's path: fen are BigInt from the API's JSON to the screen and back, never a float.
// The API writes an amount as a JSON integer below 2^53 and as a string of its decimal digits from 2^53 on;
// both become a BigInt here. An amount typed in yuan ("1,000,000.12", "¥0.10") is parsed digit by digit.

/** An amount of the API (number, digit string or BigInt) as BigInt fen; throws on anything else. */
export function fen(value) {
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === "string" && /^-?\d+$/.test(value)) return BigInt(value);
  throw new TypeError(`not an amount in fen: ${value}`);
}

const YUAN = /^(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?$/;

/** Yuan as typed ("1,000,000.12", "¥0.1", "0.10") to BigInt fen; null when it is not an amount with at most
 * two decimals (a third decimal is refused, not rounded). */
export function parseYuan(text) {
  const match = YUAN.exec(String(text).trim().replace(/^[¥￥]\s*/, ""));
  if (!match) return null;
  const whole = BigInt(match[1].replaceAll(",", ""));
  return whole * 100n + BigInt((match[2] ?? "").padEnd(2, "0"));
}

function grouped(digits) {
  return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** BigInt-able fen as "¥1,000,000.12". */
export function formatYuan(value) {
  const amount = fen(value);
  const sign = amount < 0n ? "-" : "";
  const absolute = amount < 0n ? -amount : amount;
  return `${sign}¥${grouped((absolute / 100n).toString())}.${(absolute % 100n).toString().padStart(2, "0")}`;
}

/** Fen as the plain yuan text an input shows ("1000000.12"). */
export function yuanText(value) {
  const amount = fen(value);
  return `${amount / 100n}.${(amount % 100n).toString().padStart(2, "0")}`;
}

const PERCENT = /^(\d+)(?:\.(\d{1,2}))?\s*%?$/;

/** An annual rate typed in percent ("3.65", "3.65%") as integer basis points (365); null otherwise. */
export function parsePercent(text) {
  const match = PERCENT.exec(String(text).trim());
  if (!match) return null;
  return Number(match[1]) * 100 + Number((match[2] ?? "").padEnd(2, "0"));
}

/** Basis points as a percentage text ("3.65%"). */
export function formatBps(bps) {
  const value = Number(bps);
  return `${Math.trunc(value / 100)}.${String(value % 100).padStart(2, "0")}%`;
}

/** JSON text of ``body`` with every BigInt written as its exact decimal digits (JSON.stringify refuses BigInt). */
export function jsonBody(body) {
  const marker = "\u0000fen:";
  return JSON.stringify(body, (_key, value) => (typeof value === "bigint" ? marker + value.toString() : value))
    .replace(/"\\u0000fen:(-?\d+)"/g, "$1");
}
