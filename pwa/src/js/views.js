// The cabinet home (folder tiles) and a folder's queue with keyset "load more".
import { get, HttpError } from "./api.js";
import { queuePath } from "./prefetch.js";
import { openBatchSignSheet } from "./sheets.js";
import { can, state, pid } from "./state.js";
import {
  ACTION,
  FOLDERS,
  FOLDER_TITLE,
  KIND,
  OFFLINE_FOLDERS,
  clear,
  fmtDate,
  fmtShortDate,
  h,
  plural,
} from "./ui.js";

export function viewHeading(text, extra) {
  return h("div", { class: "view-head" }, h("h2", { tabindex: "-1", class: "view-title" }, text), extra);
}

export function loadError(err) {
  const offline = !navigator.onLine || (err instanceof HttpError && err.status === 504);
  return h(
    "p",
    { class: "empty", role: "alert" },
    offline ? "Нет связи, а сохранённой копии этого раздела на устройстве нет." : `Не удалось загрузить: ${err.message}`
  );
}

function staleNote(meta) {
  if (!meta.fromCache) return null;
  return h("p", { class: "stale-note" }, "Нет связи — показана сохранённая копия", meta.cachedAt ? ` от ${fmtDateTimeShort(meta.cachedAt)}` : "");
}
const fmtDateTimeShort = (iso) =>
  new Intl.DateTimeFormat("ru-RU", { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }).format(new Date(iso));

export async function renderHome(root) {
  const meta = {};
  clear(root, viewHeading(state.cabinet.title), h("p", { class: "muted" }, "Загрузка…"));
  let counts;
  try {
    counts = await get(`/cabinets/${pid()}/folders`, meta);
  } catch (err) {
    clear(root, viewHeading(state.cabinet.title), loadError(err));
    return;
  }
  const byCode = Object.fromEntries(counts.map((c) => [c.folder, c]));
  const tiles = FOLDERS.map((f) => {
    const c = byCode[f.code] || { count: 0, overdue: 0, unread: 0 };
    const label = [
      `${f.title}: ${c.count} ${plural(c.count, "документ", "документа", "документов")}`,
      c.overdue ? `, просрочено ${c.overdue}` : "",
      c.unread ? `, новых ${c.unread}` : "",
    ].join("");
    return h(
      "a",
      {
        class: "tile" + (c.overdue ? " has-overdue" : "") + (c.count ? "" : " is-empty"),
        href: `#/f/${f.code}`,
        "data-folder": f.code,
        "aria-label": label,
      },
      h("span", { class: "tile-icon", "aria-hidden": "true" }, f.icon),
      h("span", { class: "tile-title" }, f.title),
      h("span", { class: "tile-count" }, String(c.count)),
      h(
        "span",
        { class: "tile-marks" },
        c.overdue ? h("span", { class: "badge overdue" }, `просрочено ${c.overdue}`) : null,
        c.unread ? h("span", { class: "badge unread" }, `новых ${c.unread}`) : null,
        OFFLINE_FOLDERS.includes(f.code) ? h("span", { class: "badge offline", title: "Доступно без связи" }, "⤓") : null
      )
    );
  });
  clear(root, viewHeading(state.cabinet.title, h("span", { class: "muted" }, state.cabinet.organization)), staleNote(meta), h("nav", { class: "tiles", "aria-label": "Папки кабинета" }, tiles));
}

export async function renderQueue(root, folder) {
  const title = FOLDER_TITLE[folder] || folder;
  const list = h("ul", { class: "queue", "aria-label": title });
  const more = h("button", { class: "btn secondary more", type: "button", hidden: true }, "Показать ещё");
  const head = viewHeading(title, h("a", { class: "btn ghost back", href: "#/" }, "← Папки"));
  clear(root, head, h("p", { class: "muted" }, "Загрузка…"));
  let cursor = null;
  // The sign folder: choose several documents and sign them with one confirmation.
  const selectable = folder === "sign" && can("sign");
  const selected = new Map();
  const batch = h("button", { class: "btn approve", type: "button", "data-action": "sign-batch", disabled: true }, "Подписать выбранные");
  const batchBar = selectable
    ? h("div", { class: "batch-bar row" }, batch, h("span", { class: "muted" }, navigator.onLine ? "Отметьте документы и подпишите их одним подтверждением." : "Подписание — только при связи с сервером."))
    : null;
  const onSelect = (item, checked) => {
    if (checked) selected.set(item.document_id, { document_id: item.document_id, title: item.title });
    else selected.delete(item.document_id);
    batch.disabled = !selected.size;
    batch.textContent = selected.size ? `Подписать выбранные (${selected.size})` : "Подписать выбранные";
  };
  batch.addEventListener("click", () => openBatchSignSheet([...selected.values()]));
  // One row per document: a document can hold several items in a folder (two draft
  // resolutions, say); the row counts them.
  const rows = new Map();
  const load = async () => {
    const meta = {};
    more.disabled = true;
    try {
      const page = await get(queuePath(pid(), folder, cursor), meta);
      if (!list.isConnected) clear(root, head, staleNote(meta), batchBar, list, more);
      for (const item of page.items) {
        const seen = rows.get(item.document_id);
        if (seen) {
          seen.n += 1;
          const badge = seen.el.querySelector(".badge.multi") || seen.el.querySelector(".qitem-top").appendChild(h("span", { class: "badge multi" }));
          badge.textContent = `${seen.n} ${plural(seen.n, "позиция", "позиции", "позиций")}`;
          continue;
        }
        const el = queueItem(item, folder, selectable ? onSelect : null);
        rows.set(item.document_id, { el, n: 1 });
        list.append(el);
      }
      if (!list.children.length) list.replaceWith(h("p", { class: "empty" }, "В папке нет документов."));
      cursor = page.next_cursor;
      more.hidden = !cursor;
    } catch (err) {
      if (!list.isConnected) clear(root, head, loadError(err));
      else root.append(loadError(err));
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener("click", load);
  await load();
}

function queueItem(item, folder, onSelect) {
  const pending = state.pendingDocs.has(item.document_id);
  const who = item.correspondent || item.author || "";
  return h(
    "li",
    { class: onSelect ? "selectable" : null },
    onSelect
      ? h(
          "label",
          { class: "select" },
          h("input", {
            type: "checkbox",
            "data-select": item.document_id,
            "aria-label": `Выбрать для подписи: ${item.title}`,
            onchange: (e) => onSelect(item, e.target.checked),
          })
        )
      : null,
    h(
      "a",
      {
        class: "qitem" + (item.unread ? " unread" : "") + (item.overdue ? " overdue" : ""),
        href: `#/d/${item.document_id}?f=${folder}`,
        "data-document-id": item.document_id,
      },
      h(
        "span",
        { class: "qitem-top" },
        h("span", { class: "kind" }, KIND[item.kind] || item.kind),
        item.reg_number ? h("span", { class: "reg" }, `№ ${item.reg_number} от ${fmtShortDate(item.reg_date)}`) : h("span", { class: "reg" }, "проект"),
        item.urgent ? h("span", { class: "badge urgent" }, "срочно") : null,
        item.access_level && item.access_level !== "open" ? h("span", { class: "badge dsp" }, "ДСП") : null,
        item.unread ? h("span", { class: "badge unread" }, "новый") : null,
        pending ? h("span", { class: "badge pending" }, "решение ждёт отправки") : null
      ),
      h("span", { class: "qitem-title" }, item.title),
      h(
        "span",
        { class: "qitem-bottom" },
        h("span", { class: "who" }, who),
        h("span", { class: "expected" }, ACTION[item.expected_action] || item.expected_action || ""),
        item.deadline
          ? h("span", { class: "deadline" + (item.overdue ? " overdue" : "") }, (item.overdue ? "просрочен: " : "срок: ") + fmtDate(item.deadline))
          : null,
        item.pages ? h("span", { class: "pages-count" }, `${item.pages} стр.`) : null
      )
    )
  );
}
