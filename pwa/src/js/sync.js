// The outbox as the person sees it ([data-sync=pending|done], refused decisions shown
// plainly), when it is replayed (on start, on `online`, after a decision, every 30 s while
// something waits, and from the worker's Background Sync), and the offline-readiness of
// the current cabinet ([data-offline-ready] and the last sync time).
import { AuthError, core, shareToken } from "./api.js";
import { prefetchCabinet } from "./prefetch.js";
import { emit, pid, state } from "./state.js";
import { DECISION, clear, fmtSince, h, plural, toast } from "./ui.js";

const KIND_TEXT = {
  visa: "Виза",
  resolution: "Резолюция",
  issue: "Утверждение проекта резолюции",
  reject: "Отклонение проекта резолюции",
};

let retryTimer = null;

export async function refreshSyncUI() {
  const entries = await core.outbox.all();
  state.pendingDocs = new Set(entries.map((e) => e.document_id));
  const el = document.getElementById("sync");
  if (el) {
    el.dataset.sync = entries.length ? "pending" : "done";
    el.textContent = entries.length ? `Ждут отправки: ${entries.length}` : "Решения отправлены";
    el.title = entries.length ? "Решения будут отправлены, когда появится связь" : "Очередь отправки пуста";
  }
  clearInterval(retryTimer);
  retryTimer = entries.length ? setInterval(() => replayNow(), 30000) : null;
  await renderProblems();
}

async function renderProblems() {
  const box = document.getElementById("problems");
  if (!box) return;
  const list = await core.problems.all();
  box.hidden = !list.length;
  clear(
    box,
    list.map((p) =>
      h(
        "div",
        { class: "problem", "data-testid": "sync-problem", "data-status": p.status, role: "alert" },
        h("p", {}, h("strong", {}, problemHeadline(p)), " «", p.title, "»"),
        h("p", {}, problemExplanation(p)),
        h(
          "div",
          { class: "row" },
          h("a", { class: "btn secondary", href: `#/d/${p.document_id}` + (p.folder ? `?f=${p.folder}` : "") }, "Открыть документ"),
          h(
            "button",
            {
              class: "btn ghost",
              type: "button",
              onclick: async () => {
                await core.problems.del(p.id);
                renderProblems();
              },
            },
            "Понятно"
          )
        )
      )
    )
  );
}

function problemHeadline(p) {
  const what = KIND_TEXT[p.kind] || "Решение";
  const decision = p.body && p.body.decision ? ` (${DECISION[p.body.decision] || p.body.decision})` : "";
  return p.status === 409 ? `${what}${decision} не принята: документ изменился` : `${what}${decision} не принята сервером`;
}

function problemExplanation(p) {
  const detail = (p.problem && (p.problem.detail || p.problem.title)) || "";
  if (p.status === 409) {
    return (
      "Пока решение ждало отправки, документ изменился (например, появилась новая версия файла или другой участник уже решил этот шаг). " +
      "Решение не записано. Откройте документ, посмотрите текущую версию и примите решение заново." +
      (detail ? ` Сервер: ${detail}` : "")
    );
  }
  return `Решение не записано. ${detail}`;
}

let replaying = null;

export function replayNow() {
  if (replaying) return replaying;
  replaying = (async () => {
    try {
      const report = await core.replay();
      shareToken();
      if (report.sent.length) toast(report.sent.length === 1 ? "Решение отправлено" : `Отправлено решений: ${report.sent.length}`);
      if (report.refused.length) toast("Сервер не принял решение — см. сообщение вверху", "error");
      if (report.stopped === "auth") emit("auth-required");
      if (report.sent.length || report.refused.length) emit("outbox-sent", report);
      return report;
    } catch (err) {
      if (err instanceof AuthError) emit("auth-required");
      return null;
    } finally {
      replaying = null;
      await refreshSyncUI();
    }
  })();
  return replaying;
}

export async function afterDecision(documentId) {
  state.pendingDocs.add(documentId);
  await refreshSyncUI();
  emit("decision-queued", documentId);
  if (navigator.onLine) await replayNow();
}

// --- offline readiness --------------------------------------------------------------------
export async function showOfflineStatus() {
  const el = document.getElementById("offline");
  if (!el || !pid()) return;
  const rec = await core.kv.get(`sync:${pid()}`);
  if (rec && rec.ready) el.setAttribute("data-offline-ready", "");
  else el.removeAttribute("data-offline-ready");
  const net = navigator.onLine ? "" : "Нет связи · ";
  const missing = rec && rec.ready && rec.missing ? `без ${rec.missing} ${plural(rec.missing, "страницы", "страниц", "страниц")} · ` : "";
  el.textContent = net + (rec && rec.ready ? "Доступно без связи · " : "") + missing + fmtSince(rec && rec.at);
}

const RETRY_MS = 20000;
let syncing = null;
let again = false;
let retry = null;

// Fetch the current cabinet ahead. One at a time; a call while one runs makes it run once
// more afterwards (the worker took control, the cabinet changed). A failed or incomplete run
// is tried again in 20 s while there is a connection.
export function syncCabinet() {
  if (!navigator.onLine || !pid()) return Promise.resolve();
  if (syncing) {
    again = true;
    return syncing;
  }
  clearTimeout(retry);
  syncing = (async () => {
    const el = document.getElementById("offline");
    const forPid = pid();
    let ok = false;
    try {
      const rec = await prefetchCabinet(forPid, (done, total) => {
        if (el && pid() === forPid) el.textContent = `Сохраняю для работы без связи: ${done} из ${total}`;
      });
      ok = rec.ready && !rec.missing;
    } catch (err) {
      console.warn("prefetch stopped", err);
    } finally {
      syncing = null;
      await showOfflineStatus();
    }
    if (again || (pid() && pid() !== forPid)) {
      again = false;
      return syncCabinet();
    }
    if (!ok) retry = setTimeout(() => syncCabinet(), RETRY_MS);
  })();
  return syncing;
}
