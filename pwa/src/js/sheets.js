// Action sheets: visa, resolution, issuing or rejecting a draft resolution, signing.
// Every decision goes to the outbox with its Idempotency-Key and the file sha256 the person
// saw; sync.js sends it now if there is a connection, or later.
import { decide } from "./api.js";
import { searchPositions } from "./positions.js";
import { afterDecision } from "./sync.js";
import { can, pid } from "./state.js";
import { DECISION, addWorkingDays, clear, fmtDate, h, plural, toast, workingDaysUntil } from "./ui.js";

function sheet() {
  return document.getElementById("sheet");
}

function openSheet(title, body, { confirmText = "Подтвердить", onConfirm, confirmClass = "primary" }) {
  const dlg = sheet();
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const confirm = h("button", { class: `btn ${confirmClass}`, type: "submit", "data-action": "confirm" }, confirmText);
  const form = h(
    "form",
    { method: "dialog", class: "sheet-form" },
    h("h2", { id: "sheet-title" }, title),
    body,
    navigator.onLine ? null : h("p", { class: "offline-note" }, "Нет связи: решение сохранится на устройстве и будет отправлено, когда связь появится."),
    error,
    h("div", { class: "sheet-buttons" }, h("button", { class: "btn secondary", type: "button", value: "cancel", onclick: () => dlg.close() }, "Отмена"), confirm)
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.hidden = true;
    confirm.disabled = true;
    try {
      await onConfirm();
      dlg.close();
    } catch (err) {
      clear(error, err.message || String(err));
      error.hidden = false;
    } finally {
      confirm.disabled = false;
    }
  });
  clear(dlg, form);
  dlg.setAttribute("aria-labelledby", "sheet-title");
  dlg.showModal();
  const first = form.querySelector("textarea, input, select");
  if (first) first.focus();
}

const shortSha = (sha) => (sha ? sha.slice(0, 8) : "");

function versionNote(file) {
  return h("p", { class: "muted" }, `Решение по файлу «${file.name}», версия ${file.version} (${shortSha(file.sha256)}…)`);
}

async function submit(entry, doneText) {
  await decide(entry);
  toast(navigator.onLine ? doneText : "Сохранено на устройстве, отправим при появлении связи");
  await afterDecision(entry.document_id);
}

export function openVisaSheet(card, file, decision) {
  const needsComment = decision !== "approved";
  const comment = h("textarea", {
    id: "visa-comment",
    rows: 4,
    required: needsComment,
    maxlength: 10000,
    placeholder: needsComment ? "Замечания обязательны" : "Комментарий (необязательно)",
  });
  openSheet(
    DECISION[decision],
    [
      h("p", { class: "sheet-doc" }, card.title),
      versionNote(file),
      h("label", { for: "visa-comment" }, needsComment ? "Замечания" : "Комментарий"),
      comment,
    ],
    {
      confirmText: DECISION[decision],
      confirmClass: decision === "rejected" ? "reject" : decision === "approved" ? "approve" : "remarks",
      onConfirm: async () => {
        const text = comment.value.trim();
        if (needsComment && !text) throw new Error("Напишите замечания.");
        const body = { position_id: pid(), decision, file_sha256: file.sha256 };
        if (text) body.comment = text;
        await submit(
          { kind: "visa", url: `/documents/${card.id}/visas`, body, document_id: card.id, title: card.title },
          "Виза отправлена"
        );
      },
    }
  );
}

const TEMPLATES = [
  "Прошу рассмотреть и доложить.",
  "Прошу подготовить ответ заявителю в установленный срок.",
  "Для исполнения.",
  "Прошу проработать и внести предложения.",
  "Ознакомиться.",
];

// Where this position's resolution hangs: under the resolution that gave it an assignment
// (a minister's resolution under the governor's).
function parentFor(card) {
  let found = null;
  const walk = (list) => {
    for (const r of list || []) {
      if ((r.assignments || []).some((a) => a.executor_position_id === pid())) found = r.id;
      walk(r.children);
    }
  };
  walk(card.resolutions);
  return found;
}

function executorPicker(chosen) {
  const search = h("input", { id: "exec-search", type: "search", placeholder: "Поиск по должности или организации", autocomplete: "off" });
  const results = h("ul", { class: "picker-results", role: "listbox", "aria-label": "Найденные должности" });
  const list = h("ul", { class: "picker-chosen", "aria-label": "Исполнители" });
  const renderChosen = () => {
    clear(
      list,
      chosen.length ? null : h("li", { class: "muted" }, "Исполнители не выбраны"),
      chosen.map((p, i) =>
        h(
          "li",
          {},
          h(
            "label",
            { class: "radio" },
            h("input", {
              type: "radio",
              name: "responsible",
              checked: p.responsible,
              onchange: () => {
                chosen.forEach((c, j) => (c.responsible = i === j));
              },
            }),
            h("span", {}, p.title, h("span", { class: "muted" }, p.organization ? ` · ${p.organization}` : ""))
          ),
          h("span", { class: "muted" }, p.responsible ? "ответственный" : "соисполнитель"),
          h(
            "button",
            {
              class: "btn ghost",
              type: "button",
              "aria-label": `Убрать ${p.title}`,
              onclick: () => {
                chosen.splice(i, 1);
                if (chosen.length && !chosen.some((c) => c.responsible)) chosen[0].responsible = true;
                renderChosen();
                refresh();
              },
            },
            "✕"
          )
        )
      )
    );
  };
  const refresh = async () => {
    const found = await searchPositions(search.value, new Set([...chosen.map((c) => c.position_id), pid()]));
    clear(
      results,
      found.length ? null : h("li", { class: "muted" }, "Ничего не найдено"),
      found.map((p) =>
        h(
          "li",
          { role: "option" },
          h(
            "button",
            {
              class: "pick",
              type: "button",
              "data-position-id": p.position_id,
              onclick: () => {
                chosen.push({ ...p, responsible: chosen.length === 0 });
                search.value = "";
                renderChosen();
                refresh();
              },
            },
            h("span", {}, p.title),
            h("span", { class: "muted" }, p.organization || "")
          )
        )
      )
    );
  };
  let timer = null;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 200);
  });
  renderChosen();
  refresh();
  return [h("label", { for: "exec-search" }, "Исполнители (первый — ответственный)"), list, search, results];
}

export function openResolutionSheet(card) {
  const asDraft = !can("decide") && can("prepare_resolutions");
  const text = h("textarea", { id: "res-text", rows: 4, required: true, maxlength: 10000, placeholder: "Текст резолюции" });
  const templates = h(
    "div",
    { class: "chips", role: "group", "aria-label": "Шаблоны" },
    TEMPLATES.map((t) => h("button", { class: "chip", type: "button", onclick: () => ((text.value = t), text.focus()) }, t))
  );
  const chosen = [];
  const deadline = h("input", { id: "res-deadline", type: "date", value: addWorkingDays(10) });
  const hint = h("span", { class: "muted hint", "aria-live": "polite" });
  const updateHint = () => {
    if (!deadline.value) return (hint.textContent = "без срока");
    const n = workingDaysUntil(deadline.value);
    hint.textContent = `${fmtDate(deadline.value)} — через ${n} ${plural(n, "рабочий день", "рабочих дня", "рабочих дней")}`;
  };
  deadline.addEventListener("input", updateHint);
  updateHint();
  const quick = h(
    "div",
    { class: "chips" },
    [3, 5, 10, 30].map((n) =>
      h("button", { class: "chip", type: "button", onclick: () => ((deadline.value = addWorkingDays(n)), updateHint()) }, `+${n} раб. дн.`)
    )
  );
  const control = h("input", { id: "res-control", type: "checkbox", checked: true });
  openSheet(
    asDraft ? "Проект резолюции" : "Резолюция",
    [
      h("p", { class: "sheet-doc" }, card.title),
      h("label", { for: "res-text" }, "Текст"),
      text,
      templates,
      executorPicker(chosen),
      h("label", { for: "res-deadline" }, "Срок исполнения"),
      h("div", { class: "row" }, deadline, hint),
      quick,
      h("label", { class: "check" }, control, " Поставить на контроль"),
    ],
    {
      confirmText: asDraft ? "Передать на утверждение" : "Утвердить резолюцию",
      onConfirm: async () => {
        if (!text.value.trim()) throw new Error("Напишите текст резолюции.");
        if (!chosen.length) throw new Error("Выберите хотя бы одного исполнителя.");
        const body = {
          position_id: pid(),
          text: text.value.trim(),
          executors: chosen.map((c) => ({ position_id: c.position_id, responsible: Boolean(c.responsible) })),
          on_control: control.checked,
        };
        if (deadline.value) body.deadline = deadline.value;
        const parent = parentFor(card);
        if (parent) body.parent_id = parent;
        if (asDraft) body.draft = true;
        await submit(
          { kind: "resolution", url: `/documents/${card.id}/resolutions`, body, document_id: card.id, title: card.title },
          asDraft ? "Проект резолюции передан" : "Резолюция отправлена"
        );
      },
    }
  );
}

export function openIssueSheet(card, resolution) {
  openSheet("Утвердить проект резолюции", [h("p", { class: "sheet-doc" }, card.title), h("blockquote", {}, resolution.text)], {
    confirmText: "Утвердить",
    onConfirm: () =>
      submit(
        { kind: "issue", url: `/resolutions/${resolution.id}/issue`, body: {}, document_id: card.id, title: card.title },
        "Резолюция утверждена"
      ),
  });
}

export function openRejectDraftSheet(card, resolution) {
  const comment = h("textarea", { id: "reject-comment", rows: 3, maxlength: 10000, placeholder: "Что исправить (необязательно)" });
  openSheet(
    "Отклонить проект резолюции",
    [h("p", { class: "sheet-doc" }, card.title), h("blockquote", {}, resolution.text), h("label", { for: "reject-comment" }, "Комментарий"), comment],
    {
      confirmText: "Отклонить",
      confirmClass: "reject",
      onConfirm: () =>
        submit(
          {
            kind: "reject",
            url: `/resolutions/${resolution.id}/reject`,
            body: comment.value.trim() ? { comment: comment.value.trim() } : {},
            document_id: card.id,
            title: card.title,
          },
          "Проект резолюции отклонён"
        ),
    }
  );
}

// Signing needs the server's sign request (the signed attributes to be signed), so it is
// online-only. The device-key flow (WebCrypto P-256 key in IndexedDB) lands with the
// signing issue; this sheet is where it plugs in (see signWithDeviceKey in a later change).
export function openSignSheet(card, file) {
  openSheet(
    "Подписание",
    [
      h("p", { class: "sheet-doc" }, card.title),
      versionNote(file),
      h(
        "p",
        { class: "offline-note" },
        navigator.onLine
          ? "Подписание электронной подписью на этом устройстве подключается отдельно (ключ устройства). Пока подпишите документ на рабочем месте."
          : "Подписание возможно только при связи с сервером: сервер готовит подписываемые данные."
      ),
    ],
    {
      confirmText: "Понятно",
      onConfirm: async () => {},
    }
  );
}
