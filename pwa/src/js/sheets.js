// Action sheets: visa, resolution, issuing or rejecting a draft resolution, signing.
// Every decision goes to the outbox with its Idempotency-Key and the file sha256 the person
// saw; sync.js sends it now if there is a connection, or later.
import { decide, get } from "./api.js";
import { mainFile } from "./prefetch.js";
import { searchPositions } from "./positions.js";
import { OfflineError, signBatch, signDocument, signingErrorText, signingSupported, storedKey } from "./signing.js";
import { afterDecision } from "./sync.js";
import { can, emit, pid } from "./state.js";
import { DECISION, addWorkingDays, clear, fmtDate, h, plural, toast, workingDaysUntil } from "./ui.js";

function sheet() {
  return document.getElementById("sheet");
}

const OFFLINE_DECISION = "Нет связи: решение сохранится на устройстве и будет отправлено, когда связь появится.";

function openSheet(title, body, { confirmText = "Подтвердить", onConfirm, confirmClass = "primary", offlineNote = OFFLINE_DECISION }) {
  const dlg = sheet();
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const confirm = h("button", { class: `btn ${confirmClass}`, type: "submit", "data-action": "confirm" }, confirmText);
  const form = h(
    "form",
    { method: "dialog", class: "sheet-form" },
    h("h2", { id: "sheet-title" }, title),
    body,
    navigator.onLine || !offlineNote ? null : h("p", { class: "offline-note", role: "status" }, offlineNote),
    error,
    h("div", { class: "sheet-buttons" }, h("button", { class: "btn secondary", type: "button", value: "cancel", onclick: () => dlg.close() }, "Отмена"), confirm)
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.hidden = true;
    confirm.disabled = true;
    try {
      // onConfirm may return false to keep the sheet open (to show an outcome).
      if ((await onConfirm()) !== false) dlg.close();
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

function versionNote(file, what = "Решение по файлу") {
  return h("p", { class: "muted" }, `${what} «${file.name}», версия ${file.version} (${shortSha(file.sha256)}…)`);
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
// online-only: offline the sheet says so and nothing is queued. The key is this device's
// WebCrypto key (js/signing.js), made and certified on the first signature.
const SIGN_OFFLINE = new OfflineError().message;

async function keyNote() {
  if (!signingSupported()) return h("p", { class: "form-error" }, "Этот браузер не умеет подписывать (нет WebCrypto или IndexedDB).");
  const key = await storedKey().catch(() => null);
  return h(
    "p",
    { class: "muted" },
    key
      ? "Подпись ключом этого устройства: усиленная неквалифицированная электронная подпись."
      : "На этом устройстве ещё нет ключа подписи: он будет создан при подписании. Закрытый ключ не покидает устройство."
  );
}

export async function openSignSheet(card, file) {
  openSheet(
    "Подписание",
    [h("p", { class: "sheet-doc" }, card.title), versionNote(file, "Подписывается файл"), await keyNote()],
    {
      confirmText: "Подписать",
      confirmClass: "approve",
      offlineNote: SIGN_OFFLINE,
      onConfirm: async () => {
        let out;
        try {
          out = await signDocument(card, file);
        } catch (err) {
          throw new Error(signingErrorText(err));
        }
        toast(out.document_state === "registered" ? `Документ подписан и зарегистрирован: № ${out.reg_number}` : "Документ подписан");
        emit("signed", { documents: [card.id] });
      },
    }
  );
}

// Batch signing from the `sign` folder: the chosen documents, one confirmation, then the
// outcome of each one shown in the same sheet.
export async function openBatchSignSheet(chosen) {
  const list = h("ul", { class: "batch-list", "aria-label": "Документы на подпись" }, chosen.map((c) => h("li", { "data-batch-document-id": c.document_id }, c.title)));
  let finished = false;
  openSheet(
    `Подписать ${chosen.length} ${plural(chosen.length, "документ", "документа", "документов")}`,
    [list, await keyNote()],
    {
      confirmText: "Подписать все",
      confirmClass: "approve",
      offlineNote: SIGN_OFFLINE,
      onConfirm: async () => {
        if (finished) return;
        let results;
        try {
          // The version each one is signed in: the current main file of its card.
          const items = [];
          for (const c of chosen) {
            const card = await get(`/documents/${c.document_id}`);
            const file = mainFile(card);
            if (file) items.push({ document_id: card.id, file_sha256: file.sha256, title: card.title });
          }
          results = await signBatch(items);
        } catch (err) {
          throw new Error(signingErrorText(err));
        }
        clear(
          list,
          results.map((r) =>
            h(
              "li",
              { "data-batch-document-id": r.document_id, "data-batch-status": r.ok ? "signed" : "failed", class: r.ok ? "ok" : "failed" },
              h("strong", {}, r.ok ? "Подписан" : "Не подписан"),
              " — ",
              r.title || "",
              r.ok ? null : h("span", { class: "muted" }, ` (${signingErrorText(r.error)})`)
            )
          )
        );
        const signed = results.filter((r) => r.ok).length;
        toast(`Подписано: ${signed} из ${results.length}`, signed === results.length ? "info" : "error");
        emit("signed", { documents: results.filter((r) => r.ok).map((r) => r.document_id) });
        finished = true;
        // Keep the sheet open with the outcome; the next tap closes it.
        const confirm = document.querySelector("#sheet [data-action=confirm]");
        if (confirm) confirm.textContent = "Готово";
        return false;
      },
    }
  );
}
