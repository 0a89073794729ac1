// Fetch ahead what the governor reads on a plane: the queues of sign, visa, resolve and
// drafts, each item's card and its first pages, newest first and bounded. Everything goes
// through the service worker, whose strategies put it into the named caches; so the URLs
// requested here must be exactly the ones the views request.
import { API, HttpError, core, get } from "./api.js";
import { OFFLINE_FOLDERS } from "./ui.js";
import { state } from "./state.js";
import { rememberPositions } from "./positions.js";

export const QUEUE_LIMIT = 20;
const QUEUE_PAGES = 3; // per folder: up to 60 items
const MAX_DOCS = 60;
const PAGES_PER_DOC = 3;
const CONCURRENCY = 4;
export const WIDTHS = [480, 1024, 1600];

export const queuePath = (pid, folder, cursor) =>
  `/cabinets/${pid}/queue?folder=${folder}&limit=${QUEUE_LIMIT}` + (cursor ? `&cursor=${encodeURIComponent(cursor)}` : "");

export const pageUrl = (docId, fileId, n, width) =>
  `${API}/documents/${docId}/files/${fileId}/pages/${n}?width=${width}`;

// The URL a view shows for a page. The last page carries the signature stamps, so its URL
// names how many signatures the file has: a new signature gives a new URL (the browser's
// memory cache and the worker's page cache cannot show the unstamped image for it). The
// server ignores the extra parameter; the worker also revalidates pages served `no-cache`.
export function pageSrc(card, file, n, width) {
  const url = pageUrl(card.id, file.id, n, width);
  if (n !== file.pages) return url;
  const signed = (card.signatures || []).filter((s) => !s.file_id || s.file_id === file.id).length;
  return signed ? `${url}&sig=${signed}` : url;
}

// The same choice the browser makes from srcset/sizes in the document view.
export function pageWidth() {
  const landscape = matchMedia("(orientation: landscape) and (min-width: 900px)").matches;
  const need = innerWidth * (landscape ? 0.62 : 1) * (devicePixelRatio || 1);
  return WIDTHS.find((w) => w >= need) || WIDTHS[WIDTHS.length - 1];
}

export const mainFile = (card) =>
  (card.files || []).find((f) => f.role === "main") || (card.files || [])[0] || null;

// A copy answered by the worker's cache is not a sync: fail instead of pretending.
async function fresh(path) {
  const meta = {};
  const body = await get(path, meta, { sync: true });
  if (meta.fromCache) throw new Error("offline: answered from cache");
  return body;
}

let running = null;

export function prefetchCabinet(pid, onProgress) {
  if (running && running.pid === pid) return running.promise;
  const promise = run(pid, onProgress).finally(() => {
    if (running && running.promise === promise) running = null;
  });
  running = { pid, promise };
  return promise;
}

async function run(pid, onProgress) {
  await fresh(`/cabinets/${pid}/folders`);
  const items = [];
  for (const folder of OFFLINE_FOLDERS) {
    let cursor = null;
    for (let i = 0; i < QUEUE_PAGES; i++) {
      const page = await fresh(queuePath(pid, folder, cursor));
      items.push(...page.items);
      cursor = page.next_cursor;
      if (!cursor) break;
    }
  }
  const seen = new Set();
  const docs = items
    .sort((a, b) => String(b.received_at).localeCompare(String(a.received_at)))
    .filter((it) => !seen.has(it.document_id) && seen.add(it.document_id))
    .slice(0, MAX_DOCS);
  const width = pageWidth();
  let done = 0;
  let missing = 0;
  const controlled = state.swControlled;
  const work = docs.map((it) => async () => {
    let card;
    try {
      card = await retrying(() => fresh(`/documents/${it.document_id}`));
    } catch (err) {
      // Gone from the folder meanwhile (404/403): nothing to keep. Anything else: count it.
      if (err instanceof HttpError && (err.status === 404 || err.status === 403)) return;
      throw err;
    }
    rememberPositions(card);
    const file = mainFile(card);
    if (file && controlled) {
      for (let n = 1; n <= Math.min(PAGES_PER_DOC, file.pages); n++) {
        // No Authorization header: the worker adds its token, exactly as for <img>.
        // One page the server failed to render must not leave the whole cabinet unready:
        // it is retried, then counted as missing (shown next to the status) and skipped.
        try {
          await retrying(async () => {
            const res = await fetch(pageSrc(card, file, n, width));
            if (res.headers.get("X-Kabinet-Offline")) throw new core.NetworkError("offline");
            if (!res.ok) throw new HttpError(res.status, null);
            await res.arrayBuffer();
          });
        } catch (err) {
          if (err instanceof core.NetworkError) throw err;
          console.warn(`page ${n} of ${card.id} not saved`, err);
          missing++;
        }
      }
    }
    done++;
    if (onProgress) onProgress(done, docs.length);
  });
  await pool(work, CONCURRENCY);
  const record = { at: new Date().toISOString(), ready: controlled, documents: docs.length, missing };
  await core.kv.set(`sync:${pid}`, record);
  return record;
}

// Up to three tries for server-side failures (5xx, 429); a missing network or a refusal
// (other 4xx) is final at once.
async function retrying(fn, tries = 3) {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      const transient = err instanceof HttpError && (err.status >= 500 || err.status === 429);
      if (!transient || i >= tries) throw err;
      await new Promise((r) => setTimeout(r, 400 * 2 ** i));
    }
  }
}

async function pool(tasks, size) {
  const queue = [...tasks];
  const workers = Array.from({ length: size }, async () => {
    while (queue.length) await queue.shift()();
  });
  await Promise.all(workers);
}
