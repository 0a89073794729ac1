// Kabinet service worker. pwa/build.py stamps BUILD and PRECACHE.
// One strategy and one named cache per kind of resource:
//   shell  kabinet-shell-<build>  precached app shell, cache-first; old builds deleted on activate
//   pages  kabinet-pages          page images, cache-first, bounded; a last page served
//                                 `no-cache` (may gain a signature stamp) is revalidated
//   api    kabinet-api            API GETs, network-first with a timeout, cache fallback, bounded
// Decisions are never cached: POSTs pass through; offline ones wait in the IndexedDB outbox
// (js/core.js), replayed here on Background Sync and by the page on start and on `online`.
"use strict";

importScripts("/js/core.js");

const BUILD = "__BUILD__";
const PRECACHE = __PRECACHE__;
const SHELL = `kabinet-shell-${BUILD}`;
const PAGES = "kabinet-pages";
const API_CACHE = "kabinet-api";
const KEEP = new Set([SHELL, PAGES, API_CACHE]);
const PAGES_MAX_ENTRIES = 800; // ~60 KB a page at 1024 px: about 50 MB at most
const API_MAX_ENTRIES = 600;
const NETWORK_TIMEOUT_MS = 4000;
const core = self.kabinetCore;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(SHELL).then((cache) => cache.addAll(PRECACHE.map((u) => new Request(u, { cache: "reload" }))))
  );
  // No skipWaiting here: the person decides when to update (see "message" below).
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith("kabinet-") && !KEEP.has(name)) await caches.delete(name);
      }
      await self.clients.claim();
    })()
  );
});

self.addEventListener("message", (event) => {
  const msg = event.data || {};
  if (msg.type === "skip-waiting") self.skipWaiting();
  else if (msg.type === "token") core.setAccess(msg.token, msg.expiresIn);
  else if (msg.type === "logout") {
    core.setAccess(null, 0);
    event.waitUntil(Promise.all([caches.delete(PAGES), caches.delete(API_CACHE)]));
  } else if (msg.type === "build" && event.ports[0]) event.ports[0].postMessage({ build: BUILD });
});

self.addEventListener("sync", (event) => {
  if (event.tag === core.SYNC_TAG) event.waitUntil(replayAndTell());
});

async function replayAndTell() {
  const report = await core.replay();
  const windows = await self.clients.matchAll({ type: "window" });
  for (const w of windows) {
    w.postMessage({
      type: "outbox-replayed",
      sent: report.sent.length,
      refused: report.refused.map((r) => ({ status: r.status, title: r.entry.title })),
    });
  }
  // Not everything went: make the browser retry the sync later.
  if (report.stopped === "network" || report.stopped === "server") throw new Error("outbox not drained");
}

// --- push ------------------------------------------------------------------------------------
// Payload (backend push fan-out): {title, body, url, document_id, folder, tag}, Russian text.
// Every push shows a notification (userVisibleOnly); a click focuses the cabinet and opens url.
function notificationUrl(data) {
  if (data.url) return data.url;
  if (data.document_id) return `/#/d/${data.document_id}` + (data.folder ? `?f=${data.folder}` : "");
  return "/";
}

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { body: event.data ? event.data.text() : "" };
  }
  event.waitUntil(
    self.registration.showNotification(data.title || "Кабинет руководителя", {
      body: data.body || "Новый документ в кабинете",
      tag: data.tag || undefined,
      lang: "ru",
      dir: "ltr",
      icon: "/icons/icon-192.png",
      badge: "/icons/icon-192.png",
      data: { url: notificationUrl(data), document_id: data.document_id || null },
    })
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const url = new URL((event.notification.data && event.notification.data.url) || "/", self.location.origin);
  // Only our own origin: a payload cannot send the person elsewhere.
  const target = url.origin === self.location.origin ? url.href : self.location.origin + "/";
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      const w = windows.find((c) => new URL(c.url).origin === self.location.origin);
      if (w) {
        await w.focus();
        // The page routes by hash: tell it, instead of reloading the app.
        w.postMessage({ type: "open-url", url: target });
        return;
      }
      await self.clients.openWindow(target);
    })()
  );
});

// --- fetch ----------------------------------------------------------------------------------
const PAGE_RE = /^\/api\/v1\/documents\/[^/]+\/files\/[^/]+\/pages\/\d+$/;

self.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  if (req.mode === "navigate") {
    if (url.pathname === "/" || url.pathname === "/index.html") event.respondWith(shellNavigation(req));
    return;
  }
  if (PAGE_RE.test(url.pathname)) return event.respondWith(pageImage(req));
  if (url.pathname.startsWith("/api/v1/") && !url.pathname.startsWith("/api/v1/auth/")) {
    return event.respondWith(apiNetworkFirst(req));
  }
  if (PRECACHE.includes(url.pathname)) event.respondWith(shellAsset(req));
});

async function shellNavigation(req) {
  const cached = await caches.match("/index.html", { cacheName: SHELL });
  if (cached) return cached;
  return fetch(req);
}

async function shellAsset(req) {
  const cached = await caches.match(req, { cacheName: SHELL, ignoreSearch: true });
  return cached || fetch(req);
}

function withAuth(req, token) {
  const headers = new Headers(req.headers);
  if (token && !headers.has("Authorization")) headers.set("Authorization", "Bearer " + token);
  return new Request(req.url, { headers, credentials: "same-origin", cache: "no-store" });
}

// <img> cannot send a bearer token, so the worker adds its copy (the page hands it over
// on every change; after a restart the worker refreshes for itself under the auth lock).
async function fetchWithToken(req) {
  let token = null;
  try {
    token = await core.accessToken();
  } catch (err) {
    if (!(err instanceof core.NetworkError)) token = null;
    else throw err;
  }
  let res = await fetch(withAuth(req, token));
  if (res.status === 401 && !req.headers.has("Authorization")) {
    core.setAccess(null, 0);
    await core.refresh();
    res = await fetch(withAuth(req, core.auth.access));
  }
  return res;
}

async function trim(cacheName, maxEntries) {
  const cache = await caches.open(cacheName);
  const keys = await cache.keys(); // insertion order: oldest first
  for (let i = 0; i < keys.length - maxEntries; i++) await cache.delete(keys[i]);
}

// Page images are immutable, except the last page of a document still on its route: it may
// gain a signature stamp, so the server serves it `no-cache` (same URL, new ETag once signed).
// Such a copy is revalidated with If-None-Match whenever there is a connection (a 304 costs
// nothing); offline, or when the server is slow, the copy is shown.
const mayChange = (res) => /no-cache/.test(res.headers.get("Cache-Control") || "");
const REVALIDATE_TIMEOUT_MS = 3000;

async function pageImage(req) {
  const cache = await caches.open(PAGES);
  const hit = await cache.match(req.url);
  if (hit && !mayChange(hit)) return hit;
  if (hit) return revalidatePage(req, hit, cache);
  try {
    const res = await fetchWithToken(req);
    if (res.ok) {
      await cache.put(req.url, res.clone());
      trim(PAGES, PAGES_MAX_ENTRIES);
    }
    return res;
  } catch {
    // Offline and this width was never fetched: any cached width of the same page will do.
    const any = await cache.match(req.url, { ignoreSearch: true });
    return any || offlineResponse("image");
  }
}

async function revalidatePage(req, hit, cache) {
  const etag = hit.headers.get("ETag");
  const headers = new Headers(req.headers);
  if (etag) headers.set("If-None-Match", etag);
  const network = (async () => {
    const res = await fetchWithToken(new Request(req.url, { headers }));
    if (res.status === 304) return hit;
    if (res.ok) await cache.put(req.url, res.clone());
    return res.ok ? res : hit;
  })();
  const timeout = new Promise((resolve) => setTimeout(() => resolve(null), REVALIDATE_TIMEOUT_MS));
  try {
    const first = await Promise.race([network, timeout]);
    if (first) return first;
    network.catch(() => {}); // may still land and refresh the copy
    return hit;
  } catch {
    return hit;
  }
}

function stamped(res) {
  const headers = new Headers(res.headers);
  headers.set("X-Kabinet-Cached-At", new Date().toISOString());
  return res.blob().then((body) => new Response(body, { status: res.status, statusText: res.statusText, headers }));
}

async function apiNetworkFirst(req) {
  const cache = await caches.open(API_CACHE);
  const network = (async () => {
    const res = await (req.headers.has("Authorization") ? fetch(req) : fetchWithToken(req));
    if (res.ok) {
      await cache.put(req.url, await stamped(res.clone()));
      trim(API_CACHE, API_MAX_ENTRIES);
    }
    return res;
  })();
  // The offline prefetch (X-Kabinet-Sync) waits for the network: a slow answer is not offline.
  const wait = req.headers.has("X-Kabinet-Sync") ? 120000 : NETWORK_TIMEOUT_MS;
  const timeout = new Promise((resolve) => setTimeout(() => resolve("timeout"), wait));
  try {
    const first = await Promise.race([network, timeout]);
    if (first !== "timeout") return first;
    const cached = await cache.match(req.url);
    if (cached) {
      network.catch(() => {}); // it may still land and refresh the cache
      return fromCache(cached);
    }
    return await network;
  } catch {
    const cached = await cache.match(req.url);
    return cached ? fromCache(cached) : offlineResponse("api");
  }
}

function fromCache(res) {
  const headers = new Headers(res.headers);
  headers.set("X-Kabinet-From-Cache", "1");
  return res.blob().then((body) => new Response(body, { status: res.status, headers }));
}

function offlineResponse(kind) {
  const body = JSON.stringify({
    type: "about:blank",
    title: "Offline",
    status: 504,
    detail: kind === "image" ? "страница не сохранена для работы без связи" : "нет связи, копии нет",
  });
  return new Response(body, {
    status: 504,
    headers: { "Content-Type": "application/problem+json", "X-Kabinet-Offline": "1" },
  });
}
