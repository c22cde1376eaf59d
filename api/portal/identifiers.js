// Identifiers checked in the page before anything is sent: the unified social credit code (GB 32100-2015), the
// same check as ledger/identifiers.py (tests/test_portal_identifiers.py runs both on the same codes). This module
// imports nothing, so node can run it as it is.

/** GB 32100-2015 alphabet: digits and capitals without I, O, S, V, Z. */
export const CREDIT_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
const BODY = /^[0-9A-HJ-NP-RTUWXY]{17}$/;

/** The 18th (check) character of a credit code whose first 17 characters are ``body``; null when ``body`` is
 * not 17 characters of the alphabet. */
export function creditCodeCheckCharacter(body) {
  if (typeof body !== "string" || !BODY.test(body)) return null;
  let total = 0;
  for (let index = 0; index < 17; index += 1) total += CREDIT_CODE_ALPHABET.indexOf(body[index]) * WEIGHTS[index];
  return CREDIT_CODE_ALPHABET[(31 - (total % 31)) % 31];
}

/** Whether ``code`` is 18 characters of the alphabet ending with its right check character (ASCII only: a
 * full-width or lower-case character is refused, as the service refuses it). */
export function creditCodeValid(code) {
  if (typeof code !== "string" || code.length !== 18) return false;
  const check = creditCodeCheckCharacter(code.slice(0, 17));
  return check !== null && check === code[17];
}
