// Positions for the executor picker. API.md has no org-tree search yet; when the server
// answers GET /api/v1/positions?q= (expected: [{position_id, title, organization}] or
// {items: [...]}) it is used, otherwise the picker searches the positions this device has
// seen on cards (authors, approvers, executors, addressees), kept in IndexedDB.
import { core, get, HttpError } from "./api.js";

const KEY = "positions";
let directory = null; // Map position_id -> {position_id, title, organization}
let serverSearch = true;

async function load() {
  if (!directory) directory = new Map(Object.entries((await core.kv.get(KEY)) || {}));
  return directory;
}

let saveTimer = null;
function add(dir, id, title, organization) {
  if (!id || !title) return;
  const prev = dir.get(id);
  dir.set(id, { position_id: id, title, organization: organization || (prev && prev.organization) || "" });
}

export async function rememberPositions(card) {
  const dir = await load();
  if (card.author) add(dir, card.author.position_id, card.author.title, card.author.organization);
  for (const a of card.addressees || []) if (a && typeof a === "object") add(dir, a.position_id, a.title, a.organization);
  const route = card.route;
  if (route) {
    for (const st of route.stages || []) for (const ap of st.approvers || []) add(dir, ap.position_id, ap.title);
    for (const sg of route.signatories || []) add(dir, sg.position_id, sg.title);
  }
  const walk = (list) => {
    for (const r of list || []) {
      for (const a of r.assignments || []) add(dir, a.executor_position_id, a.executor);
      for (const p of r.planned_executors || []) add(dir, p.position_id, p.title || p.executor);
      walk(r.children);
    }
  };
  walk(card.resolutions);
  clearTimeout(saveTimer);
  saveTimer = setTimeout(() => core.kv.set(KEY, Object.fromEntries(dir)), 500);
}

export async function searchPositions(q, exclude = new Set()) {
  const query = q.trim().toLowerCase();
  if (serverSearch && query.length >= 2 && navigator.onLine) {
    try {
      const res = await get(`/positions?q=${encodeURIComponent(q.trim())}&limit=20`);
      const list = Array.isArray(res) ? res : res.items || [];
      return list.filter((p) => !exclude.has(p.position_id));
    } catch (err) {
      if (err instanceof HttpError && (err.status === 404 || err.status === 405)) serverSearch = false;
    }
  }
  const dir = await load();
  return [...dir.values()]
    .filter((p) => !exclude.has(p.position_id))
    .filter((p) => !query || `${p.title} ${p.organization}`.toLowerCase().includes(query))
    .sort((a, b) => a.title.localeCompare(b.title, "ru"))
    .slice(0, 20);
}
