// The participant's own key in the browser: an encrypted keystore file opened here (the key never leaves the
// page) or an injected EIP-1193 wallet. ethers comes from the project's own node_modules (vendored by the
// service at /portal/vendor/ethers.js), never from a CDN.

let ethersModule = null;

async function ethers() {
  ethersModule ??= await import("/portal/vendor/ethers.js");
  return ethersModule;
}

let signer = null;

/** The signed-in key, or null: {address, signMessage(text), signTypedData(document)}. */
export function currentSigner() {
  return signer;
}

export function forget() {
  signer = null;
}

/** Decrypt a keystore file's text with ``password`` (scrypt: this can take a few seconds). */
export async function openKeystore(text, password) {
  const { Wallet } = await ethers();
  const wallet = await Wallet.fromEncryptedJson(text, password);
  signer = {
    address: wallet.address,
    signMessage: (message) => wallet.signMessage(message),
    signTypedData: (document) => wallet.signTypedData(document.domain, withoutDomainType(document.types), document.message),
  };
  return signer;
}

/** The act's EIP-712 digest (what SignedActs verifies), computed here with ethers. */
export async function actDigest(document) {
  const { TypedDataEncoder } = await ethers();
  return TypedDataEncoder.hash(document.domain, withoutDomainType(document.types), document.message);
}

/** A Safe owner's approval of an act of the Safe ``safe``: its signature of the Safe's own EIP-712 message
 * (``SafeMessage(bytes message)`` under the domain {chainId, verifyingContract: the Safe}) over the act's
 * digest, which the Safe checks in ``isValidSignature`` (Safe 1.4.1, CompatibilityFallbackHandler). */
export async function safeApproval(document, safe) {
  if (!signer) throw new Error("no signing key open in this page");
  const digest = await actDigest(document);
  const approval = {
    domain: { chainId: document.domain.chainId, verifyingContract: safe },
    types: {
      EIP712Domain: [{ name: "chainId", type: "uint256" }, { name: "verifyingContract", type: "address" }],
      SafeMessage: [{ name: "message", type: "bytes" }],
    },
    primaryType: "SafeMessage",
    message: { message: digest },
  };
  return signer.signTypedData(approval);
}

/** The browser's injected wallet (window.ethereum, EIP-1193), if it has one. */
export async function openInjected() {
  if (!window.ethereum) throw new Error("no wallet in this browser");
  const [account] = await window.ethereum.request({ method: "eth_requestAccounts" });
  if (!account) throw new Error("the wallet gave no account");
  const { getAddress } = await ethers();
  const address = getAddress(account); // wallets answer in lower case; the page shows the checksum spelling
  signer = {
    address,
    signMessage: (message) => window.ethereum.request({ method: "personal_sign", params: [utf8Hex(message), address] }),
    signTypedData: (document) =>
      window.ethereum.request({ method: "eth_signTypedData_v4", params: [address, JSON.stringify(document, (_k, v) => (typeof v === "bigint" ? v.toString() : v))] }),
  };
  return signer;
}

export function hasInjected() {
  return Boolean(window.ethereum);
}

function withoutDomainType(types) {
  const { EIP712Domain: _domain, ...rest } = types;
  return rest;
}

function utf8Hex(text) {
  return "0x" + Array.from(new TextEncoder().encode(text), (b) => b.toString(16).padStart(2, "0")).join("");
}
