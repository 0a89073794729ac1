// Signing with this device's key (docs/SIGNING.md, "Token-based flow"). The key pair is made
// by WebCrypto as ECDSA P-256 with extractable: false, so the private key can be used but never
// read, exported or sent; the CryptoKey object itself is kept in IndexedDB (store "keys", one
// per user). Only the public SPKI goes to the server, which certifies it by its internal CA.
// A signature: the server prepares the CMS signed attributes (to_be_signed), the device signs
// them (WebCrypto gives raw r‖s, which the server accepts) and the server assembles the CMS.
// Online-only by nature: without the server's sign request there is nothing to sign.
import { HttpError, core, get, send } from "./api.js";
import { pid, state } from "./state.js";

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256" };
const SIGN_PARAMS = { name: "ECDSA", hash: "SHA-256" };

export const signingSupported = () => Boolean(globalThis.crypto && crypto.subtle && globalThis.indexedDB);

export class OfflineError extends Error {
  constructor() {
    super("Подписание возможно только при связи с сервером: сервер готовит подписываемые данные. Подключитесь к сети и повторите.");
  }
}

function b64encode(buffer) {
  const bytes = new Uint8Array(buffer);
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

function b64decode(text) {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function deviceName() {
  const ua = navigator.userAgent;
  if (/iPad|Macintosh.*Mobile/.test(ua)) return "iPad";
  if (/Android/.test(ua)) return "Android";
  return "Браузер";
}

const userId = () => state.me && state.me.user.id;

export async function storedKey() {
  return userId() ? (await core.keys.get(userId())) || null : null;
}

// Generate, certify and store a key for the signed-in user on this device.
async function enrol() {
  const pair = await crypto.subtle.generateKey(ALGORITHM, false, ["sign", "verify"]);
  const spki = await crypto.subtle.exportKey("spki", pair.publicKey);
  const out = await send("POST", "/signing/keys", { public_key_spki: b64encode(spki), device_name: deviceName() });
  const record = {
    key_id: out.key_id,
    privateKey: pair.privateKey,
    publicKey: pair.publicKey,
    certificate_pem: out.certificate_pem,
    created_at: new Date().toISOString(),
  };
  await core.keys.set(userId(), record);
  return record;
}

// The device key, enrolled on first use; re-enrolled when the server no longer knows it or
// has revoked it (a reset server, a lost certificate, a revocation by the security officer).
export async function deviceKey() {
  let record = await storedKey();
  if (record) {
    const keys = await get("/signing/keys");
    const known = keys.find((k) => k.key_id === record.key_id);
    if (!known || known.revoked_at) {
      await core.keys.del(userId());
      record = null;
    }
  }
  return record || enrol();
}

async function signBytes(record, base64) {
  const signature = await crypto.subtle.sign(SIGN_PARAMS, record.privateKey, b64decode(base64));
  return b64encode(signature); // raw r‖s, 64 bytes
}

function requireOnline() {
  if (!navigator.onLine) throw new OfflineError();
}

// One document: sign request → device signature → complete. Returns the server's SignatureOut.
export async function signDocument(card, file) {
  requireOnline();
  const record = await deviceKey();
  const req = await send("POST", `/documents/${card.id}/sign-requests`, {
    position_id: pid(),
    file_sha256: file.sha256,
    key_id: record.key_id,
  });
  if (req.algorithm !== "ECDSA-SHA256") throw new Error(`неизвестный алгоритм подписи: ${req.algorithm}`);
  const signature = await signBytes(record, req.to_be_signed);
  return send("POST", `/sign-requests/${req.request_id}/complete`, { signature }, { idempotencyKey: core.uuid() });
}

// Several documents, one confirmation. `items` are {document_id, file_sha256, title}.
// Returns one result per item: {document_id, title, ok, signature?, error?}.
export async function signBatch(items) {
  requireOnline();
  const record = await deviceKey();
  const batch = await send("POST", "/sign-batches", {
    position_id: pid(),
    key_id: record.key_id,
    items: items.map((it) => ({ document_id: it.document_id, file_sha256: it.file_sha256 })),
  });
  const titles = new Map(items.map((it) => [it.document_id, it.title]));
  const results = new Map();
  const signatures = [];
  for (const it of batch.items) {
    if (it.error || !it.request_id) {
      results.set(it.document_id, { document_id: it.document_id, ok: false, error: it.error });
    } else {
      signatures.push({ request_id: it.request_id, signature: await signBytes(record, it.to_be_signed) });
    }
  }
  if (signatures.length) {
    const done = await send("POST", `/sign-batches/${batch.batch_id}/complete`, { signatures }, { idempotencyKey: core.uuid() });
    for (const r of done.items) {
      const ok = r.status >= 200 && r.status < 300 && Boolean(r.signature);
      results.set(r.document_id, { document_id: r.document_id, ok, signature: r.signature, error: r.error });
    }
  }
  return items.map((it) => ({ title: titles.get(it.document_id), ...(results.get(it.document_id) || { document_id: it.document_id, ok: false, error: { detail: "нет ответа сервера" } }) }));
}

// Plain Russian for a refusal.
export function signingErrorText(err) {
  if (err instanceof OfflineError || err instanceof core.NetworkError) return new OfflineError().message;
  const status = err instanceof HttpError ? err.status : err && err.status;
  const detail = (err && (err.detail || (err.problem && (err.problem.detail || err.problem.title)) || err.message)) || "";
  const server = detail ? ` Ответ сервера: ${detail}` : "";
  if (status === 409) return `Документ изменился, уже подписан или подпись сейчас не ожидается.${server}`;
  if (status === 403) return "В этом кабинете нет права подписи.";
  if (status === 404) return "Документ или ключ подписи не найден.";
  return `Подпись не выполнена: ${detail || "ошибка " + status}`;
}
