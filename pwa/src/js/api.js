// Page-side API: JSON over core.authFetch, the login, and decisions through the outbox.
import "./core.js";

export const core = globalThis.kabinetCore;
export const { API, AuthError, NetworkError } = core;

export class HttpError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

// The service worker adds the token to <img> requests for page images; hand it our copy.
export function shareToken() {
  const sw = navigator.serviceWorker && navigator.serviceWorker.controller;
  if (sw && core.auth.access) {
    const expiresIn = Math.max(0, Math.round((core.auth.expiresAt - Date.now()) / 1000));
    sw.postMessage({ type: "token", token: core.auth.access, expiresIn });
  }
}

export async function login(loginName, password) {
  const res = await fetch(API + "/auth/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ login: loginName, password, device_name: deviceName() }),
    cache: "no-store",
  });
  if (!res.ok) throw new HttpError(res.status, await core.problemOf(res));
  await core.saveTokens(await res.json());
  shareToken();
}

export async function logout() {
  try {
    await core.authFetch(API + "/auth/logout", { method: "POST" });
  } catch {
    // Offline: the server-side session expires on its own; the device forgets it now.
  }
  const sw = navigator.serviceWorker && navigator.serviceWorker.controller;
  if (sw) sw.postMessage({ type: "logout" });
  await core.clearAll();
  core.setAccess(null, 0);
}

function deviceName() {
  const ua = navigator.userAgent;
  if (/iPad|Macintosh.*Mobile/.test(ua)) return "iPad";
  if (/Android/.test(ua)) return "Android";
  return "Браузер";
}

// GET JSON. `meta.fromCache` tells whether the service worker answered from its copy.
export async function get(path, meta = {}, { sync = false } = {}) {
  const before = core.auth.access;
  // `sync`: the offline prefetch. The worker then waits for the network as long as it takes
  // (a slow server is not "offline") and answers from its copy only when there is no network.
  const headers = sync ? { "X-Kabinet-Sync": "1" } : undefined;
  const res = await core.authFetch(API + path, { method: "GET", headers });
  if (core.auth.access !== before) shareToken();
  meta.fromCache = res.headers.get("X-Kabinet-From-Cache") === "1";
  meta.cachedAt = res.headers.get("X-Kabinet-Cached-At");
  if (!res.ok) throw new HttpError(res.status, await core.problemOf(res));
  return res.json();
}

// A direct request (no outbox): signing and push registration are online-only. Throws
// NetworkError without a connection, HttpError when the server refuses.
export async function send(method, path, body, { idempotencyKey } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  const before = core.auth.access;
  const res = await core.authFetch(API + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
  if (core.auth.access !== before) shareToken();
  if (!res.ok) throw new HttpError(res.status, await core.problemOf(res));
  return res.status === 204 ? null : res.json();
}

// A decision: written to the outbox first, then the outbox is replayed at once if the
// connection allows. One path for online and offline, so a lost answer is retried with the
// same Idempotency-Key and recorded exactly once.
export async function decide({ kind, url, body, document_id, title }) {
  const entry = {
    key: core.uuid(),
    kind,
    url: API + url,
    body,
    document_id,
    title,
    // The folder it was decided from, so a refused decision links back to the same view.
    folder: new URLSearchParams(location.hash.split("?")[1] || "").get("f"),
    created_at: new Date().toISOString(),
    attempts: 0,
  };
  await core.outbox.add(entry);
  try {
    const reg = await navigator.serviceWorker?.getRegistration();
    if (reg && "sync" in reg) await reg.sync.register(core.SYNC_TAG);
  } catch {
    // Background Sync missing (iPadOS Safari) or refused: replay on start and on `online`.
  }
  return entry;
}
