// Shared by the page (imported as a module for its side effect) and the service worker
// (importScripts). It therefore has no import/export statements and publishes one object,
// globalThis.kabinetCore. It holds what both contexts must agree on: the IndexedDB schema,
// the refresh-token rotation (under a Web Lock, because the server revokes the whole login
// when a rotated refresh token is reused) and the outbox replay (under another lock, so the
// page and a Background Sync never send the same entry at the same moment — the
// Idempotency-Key would make that harmless, but it would still be wasted traffic).
"use strict";

(function (scope) {
  const DB_NAME = "kabinet";
  const DB_VERSION = 1;
  const API = "/api/v1";
  const SYNC_TAG = "kabinet-outbox";

  let dbPromise = null;

  function openDb() {
    if (dbPromise) return dbPromise;
    dbPromise = new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, DB_VERSION);
      req.onupgradeneeded = () => {
        const db = req.result;
        // kv: refresh token, me, current cabinet, last sync per cabinet, positions seen, and
        // this device's signing keys ("device-key:<user id>", see `keys` below).
        if (!db.objectStoreNames.contains("kv")) db.createObjectStore("kv");
        // outbox: decisions waiting to be sent, in insertion order (autoIncrement id).
        if (!db.objectStoreNames.contains("outbox")) {
          db.createObjectStore("outbox", { keyPath: "id", autoIncrement: true });
        }
        // problems: decisions the server refused (409 and other 4xx); kept until the person
        // has seen them and dismissed them — never dropped silently.
        if (!db.objectStoreNames.contains("problems")) {
          db.createObjectStore("problems", { keyPath: "id" });
        }
      };
      req.onsuccess = () => {
        const db = req.result;
        // Another tab upgraded the schema: let it, and reopen next time.
        db.onversionchange = () => {
          db.close();
          dbPromise = null;
        };
        resolve(db);
      };
      req.onerror = () => reject(req.error);
    });
    return dbPromise;
  }

  // One request per transaction, nothing else awaited inside it.
  async function tx(store, mode, fn) {
    const db = await openDb();
    return new Promise((resolve, reject) => {
      const t = db.transaction(store, mode);
      const s = t.objectStore(store);
      let result;
      const req = fn(s);
      if (req) req.onsuccess = () => (result = req.result);
      t.oncomplete = () => resolve(result);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error || new Error("transaction aborted"));
    });
  }

  const kv = {
    get: (key) => tx("kv", "readonly", (s) => s.get(key)),
    set: (key, value) => tx("kv", "readwrite", (s) => s.put(value, key)),
    del: (key) => tx("kv", "readwrite", (s) => s.delete(key)),
  };

  const outbox = {
    all: () => tx("outbox", "readonly", (s) => s.getAll()),
    count: () => tx("outbox", "readonly", (s) => s.count()),
    add: (entry) => tx("outbox", "readwrite", (s) => s.add(entry)),
    put: (entry) => tx("outbox", "readwrite", (s) => s.put(entry)),
    del: (id) => tx("outbox", "readwrite", (s) => s.delete(id)),
  };

  // This device's signing key per user: {key_id, privateKey (CryptoKey, non-extractable),
  // publicKey, certificate_pem}. IndexedDB keeps the CryptoKey by structured clone; its bytes
  // never leave the browser. Kept on logout (enrolment is once per device; the server can
  // revoke), so these live in `kv` under their own prefix, which clearAll() leaves alone —
  // no schema version change, which would lock out a worker of the previous build.
  const DEVICE_KEY = "device-key:";
  const keys = {
    get: (userId) => kv.get(DEVICE_KEY + userId),
    set: (userId, value) => kv.set(DEVICE_KEY + userId, value),
    del: (userId) => kv.del(DEVICE_KEY + userId),
  };

  const problems = {
    all: () => tx("problems", "readonly", (s) => s.getAll()),
    put: (entry) => tx("problems", "readwrite", (s) => s.put(entry)),
    del: (id) => tx("problems", "readwrite", (s) => s.delete(id)),
  };

  async function moveToProblems(entry, status, problem) {
    const db = await openDb();
    return new Promise((resolve, reject) => {
      const t = db.transaction(["outbox", "problems"], "readwrite");
      t.objectStore("outbox").delete(entry.id);
      t.objectStore("problems").put({
        ...entry,
        id: entry.key,
        status,
        problem,
        refused_at: new Date().toISOString(),
      });
      t.oncomplete = () => resolve();
      t.onerror = () => reject(t.error);
    });
  }

  async function clearAll() {
    const db = await openDb();
    return new Promise((resolve, reject) => {
      const t = db.transaction(["kv", "outbox", "problems"], "readwrite");
      for (const name of ["outbox", "problems"]) t.objectStore(name).clear();
      const store = t.objectStore("kv");
      const all = store.getAllKeys();
      all.onsuccess = () => {
        for (const key of all.result) if (!String(key).startsWith(DEVICE_KEY)) store.delete(key);
      };
      t.oncomplete = () => resolve();
      t.onerror = () => reject(t.error);
    });
  }

  // --- locks: Web Locks where present (Chrome, Safari 15.4+), else run directly -------------
  function withLock(name, fn) {
    const locks = scope.navigator && scope.navigator.locks;
    if (locks && locks.request) return locks.request(name, fn);
    return fn();
  }

  // --- tokens ------------------------------------------------------------------------------
  // The access token lives only in this context's memory; the refresh token in IndexedDB.
  const auth = { access: null, expiresAt: 0 };

  class AuthError extends Error {}
  class NetworkError extends Error {}

  function setAccess(token, expiresIn) {
    auth.access = token;
    auth.expiresAt = token ? Date.now() + Math.max(0, (expiresIn || 0) - 30) * 1000 : 0;
  }

  async function saveTokens(pair) {
    await kv.set("refresh_token", pair.refresh_token);
    setAccess(pair.access_token, pair.expires_in);
  }

  // Rotate the refresh token. Inside the lock the stored token is read again, so two
  // contexts refreshing one after the other each use the newest token, never a rotated one.
  function refresh() {
    return withLock("kabinet-auth", async () => {
      const token = await kv.get("refresh_token");
      if (!token) throw new AuthError("no refresh token");
      let res;
      try {
        res = await fetch(API + "/auth/refresh", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ refresh_token: token }),
          cache: "no-store",
        });
      } catch (err) {
        throw new NetworkError(String(err));
      }
      if (res.status === 401 || res.status === 403) {
        await kv.del("refresh_token");
        throw new AuthError("refresh refused");
      }
      if (!res.ok) throw new NetworkError("refresh failed: " + res.status);
      const pair = await res.json();
      await saveTokens(pair);
      return pair;
    });
  }

  async function accessToken() {
    if (auth.access && Date.now() < auth.expiresAt) return auth.access;
    await refresh();
    return auth.access;
  }

  // fetch with the bearer token; one refresh and retry on 401.
  // Throws NetworkError when there is no connection, AuthError when login is needed.
  async function authFetch(path, init = {}) {
    const send = async (token) => {
      const headers = new Headers(init.headers || {});
      if (token) headers.set("Authorization", "Bearer " + token);
      try {
        return await fetch(path, { ...init, headers });
      } catch (err) {
        throw new NetworkError(String(err));
      }
    };
    let token = null;
    try {
      token = await accessToken();
    } catch (err) {
      // Offline and no token yet: GETs may still be answered by the service worker's cache.
      if (!(err instanceof NetworkError) || (init.method && init.method !== "GET")) throw err;
    }
    let res = await send(token);
    if (res.status === 401 && token) {
      setAccess(null, 0);
      await refresh();
      res = await send(auth.access);
    }
    if (res.status === 401) throw new AuthError("unauthorized");
    return res;
  }

  async function problemOf(res) {
    try {
      const body = await res.clone().json();
      return typeof body === "object" && body ? body : { detail: String(body) };
    } catch {
      return { status: res.status, detail: res.statusText };
    }
  }

  // --- outbox replay -----------------------------------------------------------------------
  // Entries are sent strictly in order. 2xx: removed. 409 and other refusals (4xx): moved to
  // `problems` for the person to see. No connection, 429 or 5xx: stop, keep the entry,
  // try again later. The Idempotency-Key makes a resend after a lost answer a replay.
  function replay(notify) {
    return withLock("kabinet-outbox", async () => {
      const report = { sent: [], refused: [], stopped: null };
      const entries = await outbox.all();
      for (const entry of entries) {
        let res;
        try {
          res = await authFetch(entry.url, {
            method: "POST",
            headers: {
              "Content-Type": "application/json",
              "Idempotency-Key": entry.key,
            },
            body: JSON.stringify(entry.body),
            cache: "no-store",
          });
        } catch (err) {
          report.stopped = err instanceof AuthError ? "auth" : "network";
          await outbox.put({ ...entry, attempts: (entry.attempts || 0) + 1, last_error: String(err) });
          break;
        }
        if (res.ok) {
          await outbox.del(entry.id);
          let result = null;
          try {
            result = await res.json();
          } catch {
            result = null;
          }
          report.sent.push({ entry, result });
        } else if (res.status === 429 || res.status >= 500) {
          report.stopped = "server";
          await outbox.put({ ...entry, attempts: (entry.attempts || 0) + 1, last_error: "HTTP " + res.status });
          break;
        } else {
          const problem = await problemOf(res);
          await moveToProblems(entry, res.status, problem);
          report.refused.push({ entry, status: res.status, problem });
        }
        if (notify) notify(report);
      }
      return report;
    });
  }

  function uuid() {
    if (scope.crypto && scope.crypto.randomUUID) return scope.crypto.randomUUID();
    const b = scope.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const hex = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  scope.kabinetCore = {
    API,
    SYNC_TAG,
    openDb,
    kv,
    outbox,
    problems,
    keys,
    clearAll,
    auth,
    setAccess,
    saveTokens,
    refresh,
    accessToken,
    authFetch,
    problemOf,
    replay,
    uuid,
    AuthError,
    NetworkError,
  };
})(globalThis);
