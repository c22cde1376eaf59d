// The portal's only way to the ledger: the REST API, with the signed-in participant's credentials.
import { jsonBody } from "./money.js";

/** A refusal of the API: ``problem`` is its RFC 9457 body. */
export class ApiProblem extends Error {
  constructor(problem) {
    super(problem?.detail ?? problem?.title ?? "problem");
    this.problem = problem;
  }
}

const SESSION = "scf.credential";

export const session = {
  get credential() {
    return sessionStorage.getItem(SESSION);
  },
  set credential(value) {
    if (value) sessionStorage.setItem(SESSION, value);
    else sessionStorage.removeItem(SESSION);
  },
};

function idempotencyKey() {
  if (crypto.randomUUID) return `portal-${crypto.randomUUID()}`;
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `portal-${Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Send a request; answer {status, body, headers}. Problems (4xx/5xx but 428) throw ApiProblem. */
export async function request(method, path, { body, query, headers = {}, credential = session.credential, raw = false } = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const init = { method, headers: { Accept: raw ? "*/*" : "application/json", ...headers } };
  if (credential) init.headers.Authorization = `Bearer ${credential}`;
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = jsonBody(body);
  }
  if (method !== "GET" && !init.headers["Idempotency-Key"]) init.headers["Idempotency-Key"] = idempotencyKey();
  let answer;
  try {
    answer = await fetch(url, init);
  } catch (error) {
    throw new ApiProblem({ status: 0, type: "network", title: "network", detail: String(error) });
  }
  if (raw && answer.ok) return { status: answer.status, body: await answer.blob(), headers: answer.headers };
  const text = await answer.text();
  const parsed = text ? parseExact(text) : null;
  if (answer.status >= 400 && answer.status !== 428) throw new ApiProblem(parsed ?? { status: answer.status });
  return { status: answer.status, body: parsed, headers: answer.headers };
}

/** JSON with every integer beyond 2^53 read from its source digits as a BigInt (an EIP-712 nonce, a big id): a
 * float would silently change it, and a signature over a changed value signs something else. */
function parseExact(text) {
  return JSON.parse(text, (_key, value, context) => {
    if (typeof value === "number" && !Number.isSafeInteger(value) && context && /^-?\d+$/.test(context.source)) {
      return BigInt(context.source);
    }
    return value;
  });
}

export const get = (path, query) => request("GET", path, { query }).then((answer) => answer.body);

/** Every page of a list route (``next`` links), up to ``limit`` items. */
export async function getAll(path, query = {}, limit = 2000) {
  const items = [];
  let answer = await get(path, { size: 200, ...query });
  items.push(...answer.items);
  while (answer.next && items.length < limit) {
    answer = await request("GET", answer.next).then((a) => a.body);
    items.push(...answer.items);
  }
  return items;
}

let rules = null;
let skew = 0;

/** The ledger's rule parameters and the chain's time (GET /rules), read each time a page is drawn: due dates and
 * maturities are checked against the chain's clock, which is what the contracts compare them with, not this
 * computer's. */
export async function loadRules() {
  rules = await get("/rules");
  skew = Number(rules.chain_time) - Date.now() / 1000;
  return rules;
}

let reading = null;

/** Start reading the rules now (beside another request, e.g. the sign-in's ``/participants/me``). */
export function startRules() {
  reading = loadRules();
  reading.catch(() => {}); // a failed reading is answered by the page that takes it
}

/** Forget a reading started for a session that did not open. */
export function dropRules() {
  reading = null;
}

/** The reading started last (taken once), or a new one. */
export function takeRules() {
  const taken = reading ?? loadRules();
  reading = null;
  return taken;
}

/** Whether the rules were read once in this page. */
export const rulesKnown = () => rules !== null;

/** A rule parameter by name (``max_tenor`` in seconds, ``grace_period``…), as last read; undefined before. */
export const rule = (name) => (rules ? Number(rules[name]) : undefined);

/** The chain's time now, Unix seconds: this computer's clock corrected by how far it was from the chain's. */
export const chainNow = () => Date.now() / 1000 + skew;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Follow an operation until it is final: answers the OperationView; ``onUpdate`` sees every state. */
export async function follow(operationId, onUpdate = () => {}) {
  for (let delay = 250; ; delay = Math.min(delay * 1.5, 2000)) {
    const answer = await request("GET", `/operations/${operationId}`);
    onUpdate(answer.body);
    if (answer.status === 200) return answer.body;
    await sleep(delay);
  }
}
