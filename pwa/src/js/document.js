// The document: page images (swipe between pages, zoom), requisites, files, route with
// visas and remarks, the resolutions tree, history, and the action bar for the folder.
import { get, send } from "./api.js";
import { mainFile, pageSrc, WIDTHS } from "./prefetch.js";
import { rememberPositions } from "./positions.js";
import { openIssueSheet, openRejectDraftSheet, openResolutionSheet, openSignSheet, openVisaSheet } from "./sheets.js";
import { can, pid, state } from "./state.js";
import { DECISION, FOLDER_TITLE, HISTORY, KIND, clear, fmtDate, fmtDateTime, fmtShortDate, fmtSize, h } from "./ui.js";
import { loadError, viewHeading } from "./views.js";

const STATE = {
  draft: "Проект",
  on_route: "На согласовании",
  approved: "Согласован",
  signing: "На подписании",
  signed: "Подписан",
  registered: "Зарегистрирован",
  rework: "На доработке",
  returned: "Возвращён",
};

export async function renderDocument(root, docId, folder) {
  const back = h("a", { class: "btn ghost back", href: folder ? `#/f/${folder}` : "#/" }, "← " + (FOLDER_TITLE[folder] || "Папки"));
  clear(root, viewHeading("Документ", back), h("p", { class: "muted" }, "Загрузка…"));
  const meta = {};
  let card;
  try {
    card = await get(`/documents/${docId}`, meta);
  } catch (err) {
    clear(root, viewHeading("Документ", back), loadError(err));
    return;
  }
  rememberPositions(card);
  if (!meta.fromCache && pid()) {
    // Opened (not prefetched): its items in this cabinet are no longer new. Online only;
    // offline the mark simply stays until the next time the document is opened.
    send("POST", `/cabinets/${pid()}/read`, { document_id: docId }).catch(() => {});
  }
  const file = mainFile(card);
  const viewer = h("section", { class: "viewer", "aria-label": "Страницы документа" });
  const info = h("aside", { class: "doc-info", "aria-label": "Сведения о документе" });
  const actions = h("footer", { class: "actions", "aria-label": "Решение" });

  clear(
    root,
    h(
      "article",
      { class: "doc", "data-card-id": card.id },
      h(
        "header",
        { class: "doc-head" },
        back,
        h(
          "div",
          { class: "doc-head-text" },
          h("h2", { tabindex: "-1", class: "view-title doc-title" }, card.title),
          h(
            "p",
            { class: "muted" },
            [KIND[card.kind] || card.kind, card.reg_number ? `№ ${card.reg_number} от ${fmtShortDate(card.reg_date)}` : "проект", STATE[card.state] || card.state]
              .filter(Boolean)
              .join(" · "),
            meta.fromCache ? h("span", { class: "badge offline" }, " сохранённая копия") : null
          )
        )
      ),
      h("div", { class: "doc-body" }, viewer, info),
      actions
    )
  );
  showFile(viewer, card, file);
  renderInfo(info, card, viewer);
  renderActions(actions, card, folder, file);
}

function showFile(viewer, card, file) {
  if (!file || !file.pages) {
    clear(viewer, h("p", { class: "empty" }, "У документа нет файла с изображениями страниц."));
    return;
  }
  const strip = h("div", { class: "pages", tabindex: "0", "aria-label": `Страницы файла ${file.name}` });
  const counter = h("span", { class: "page-counter", "aria-live": "polite" }, `1 / ${file.pages}`);
  for (let n = 1; n <= file.pages; n++) {
    const img = h("img", {
      "data-page": n,
      alt: `Страница ${n} из ${file.pages}`,
      src: pageSrc(card, file, n, 1024),
      srcset: WIDTHS.map((w) => `${pageSrc(card, file, n, w)} ${w}w`).join(", "),
      sizes: "(orientation: landscape) and (min-width: 900px) 62vw, 100vw",
      loading: n <= 2 ? "eager" : "lazy",
      decoding: "async",
      width: 1024,
      height: 1448,
      draggable: "false",
    });
    img.addEventListener("error", () => img.classList.add("failed"), { once: true });
    strip.append(h("figure", { class: "page" }, img));
  }
  const go = (delta) => {
    const w = strip.clientWidth || 1;
    strip.scrollBy({ left: delta * w, behavior: "smooth" });
  };
  strip.addEventListener("scroll", () => {
    const n = Math.round(strip.scrollLeft / (strip.clientWidth || 1)) + 1;
    counter.textContent = `${Math.min(n, file.pages)} / ${file.pages}`;
  }, { passive: true });
  strip.addEventListener("keydown", (e) => {
    if (e.key === "ArrowRight" || e.key === "PageDown") (go(1), e.preventDefault());
    if (e.key === "ArrowLeft" || e.key === "PageUp") (go(-1), e.preventDefault());
  });
  // Double tap (or double click) toggles a 2× zoom; the zoomed page scrolls in both axes,
  // and the browser's own pinch-zoom stays available (the viewport does not forbid it).
  strip.addEventListener("dblclick", () => viewer.classList.toggle("zoomed"));
  const toolbar = h(
    "div",
    { class: "page-tools" },
    h("button", { class: "btn ghost", type: "button", "aria-label": "Предыдущая страница", onclick: () => go(-1) }, "‹"),
    counter,
    h("button", { class: "btn ghost", type: "button", "aria-label": "Следующая страница", onclick: () => go(1) }, "›"),
    h("button", { class: "btn ghost", type: "button", "aria-label": "Увеличить или уменьшить", onclick: () => viewer.classList.toggle("zoomed") }, "⤢")
  );
  clear(viewer, strip, toolbar);
}

function section(title, ...body) {
  return h("section", { class: "info-section" }, h("h3", {}, title), ...body);
}

function renderInfo(info, card, viewer) {
  const dl = h("dl", { class: "req" });
  const row = (k, v) => v && dl.append(h("dt", {}, k), h("dd", {}, v));
  row("Вид", KIND[card.kind] || card.kind);
  row("Рег. номер", card.reg_number ? `${card.reg_number} от ${fmtDate(card.reg_date)}` : "не зарегистрирован");
  row("Автор", card.author ? `${card.author.title}, ${card.author.organization}` : "");
  row("Корреспондент", typeof card.correspondent === "string" ? card.correspondent : card.correspondent && (card.correspondent.name || card.correspondent.title));
  row("Адресаты", (card.addressees || []).map((a) => (typeof a === "string" ? a : a.title)).join("; "));
  row("Срок", card.deadline ? fmtDate(card.deadline) : "");
  row("Доступ", card.access_level && card.access_level !== "open" ? "ДСП" : "");
  if (card.summary) row("Содержание", card.summary);

  const files = h(
    "ul",
    { class: "files" },
    (card.files || []).map((f) =>
      h(
        "li",
        {},
        h(
          "button",
          { class: "file", type: "button", onclick: () => showFile(viewer, card, f), "aria-label": `Показать файл ${f.name}` },
          h("span", { class: "file-name" }, f.name),
          h("span", { class: "muted" }, `версия ${f.version} · ${f.pages} стр. · ${fmtSize(f.size)}`)
        )
      )
    )
  );
  clear(info, section("Реквизиты", dl), section("Файлы", files));
  if (card.route) info.append(section("Согласование", routeView(card.route)));
  if ((card.resolutions || []).length) info.append(section("Резолюции", resolutionsTree(card.resolutions, card)));
  if ((card.signatures || []).length)
    info.append(
      section(
        "Подписи",
        h(
          "ul",
          { class: "plain signatures", "data-testid": "signatures" },
          card.signatures.map((s) =>
            h(
              "li",
              { "data-signature-id": s.id },
              h("span", {}, s.signer || "подпись"),
              h("span", { class: "muted" }, ` · ${fmtDateTime(s.signing_time || s.signed_at)}` + (s.actor_role && s.actor_role !== "own" ? ` (${s.actor_role})` : ""))
            )
          )
        )
      )
    );
  info.append(
    section(
      "История",
      h(
        "ol",
        { class: "history" },
        [...(card.history || [])].reverse().map((ev) =>
          h(
            "li",
            { "data-history-action": ev.action },
            h("time", { datetime: ev.at }, fmtDateTime(ev.at)),
            h("span", {}, HISTORY[ev.action] || ev.action),
            ev.details && ev.details.decision ? h("span", {}, " — " + (DECISION[ev.details.decision] || ev.details.decision)) : null,
            h("span", { class: "muted" }, ev.user ? ` · ${ev.user}${ev.actor_role && ev.actor_role !== "own" ? " (" + ev.actor_role + ")" : ""}` : "")
          )
        )
      )
    )
  );
}

function routeView(route) {
  return h(
    "ol",
    { class: "route" },
    (route.stages || []).map((st) =>
      h(
        "li",
        {},
        h("strong", {}, `Этап ${(st.index ?? 0) + 1}`),
        st.deadline ? h("span", { class: "muted" }, ` · до ${fmtDate(st.deadline)}`) : null,
        h(
          "ul",
          { class: "plain" },
          (st.approvers || []).map((ap) =>
            h(
              "li",
              { class: "approver" + (ap.stale ? " stale" : "") },
              h("span", {}, ap.title || ap.position_id),
              " — ",
              h("span", { class: "decision " + (ap.decision || "waiting") }, ap.decision ? DECISION[ap.decision] || ap.decision : "ожидается"),
              ap.auto ? h("span", { class: "badge" }, "авто") : null,
              ap.stale ? h("span", { class: "badge overdue" }, "по старой версии") : null,
              ap.comment ? h("p", { class: "remark" }, ap.comment) : null
            )
          )
        )
      )
    ),
    (route.signatories || []).length
      ? h("li", {}, h("strong", {}, "Подписание"), h("ul", { class: "plain" }, route.signatories.map((s) => h("li", { "data-signatory-state": s.state }, `${s.title || s.position_id} — ${s.state === "signed" || s.signed_at ? "подписано" : "ожидается"}`))))
      : null
  );
}

function resolutionsTree(list, card) {
  return h(
    "ul",
    { class: "tree" },
    list.map((r) =>
      h(
        "li",
        { class: "resolution", "data-resolution-id": r.id, "data-state": r.state },
        h("p", {}, h("strong", {}, r.author || ""), r.state === "draft" ? h("span", { class: "badge pending" }, "проект") : null),
        h("p", { class: "res-text" }, r.text),
        h(
          "p",
          { class: "muted" },
          [
            (r.assignments || []).length
              ? "Исполнители: " + r.assignments.map((a) => a.executor + (a.responsible ? " (отв.)" : "")).join(", ")
              : (r.planned_executors || []).length
                ? "Исполнители: " + r.planned_executors.map((p) => (p.title || p.executor || "") + (p.responsible ? " (отв.)" : "")).join(", ")
                : "",
            r.deadline ? `срок ${fmtDate(r.deadline)}` : "",
            r.on_control ? "на контроле" : "",
            r.prepared_by ? `подготовил ${r.prepared_by}` : "",
          ]
            .filter(Boolean)
            .join(" · ")
        ),
        r.state === "draft" && can("decide") && r.author_position_id === pid()
          ? h(
              "div",
              { class: "row" },
              h("button", { class: "btn primary", type: "button", "data-action": "issue", onclick: () => openIssueSheet(card, r) }, "Утвердить"),
              h("button", { class: "btn secondary", type: "button", "data-action": "reject-draft", onclick: () => openRejectDraftSheet(card, r) }, "Отклонить")
            )
          : null,
        (r.children || []).length ? resolutionsTree(r.children, card) : null
      )
    )
  );
}

function renderActions(bar, card, folder, file) {
  if (state.pendingDocs.has(card.id)) {
    clear(bar, h("p", { class: "pending-note", role: "status" }, "Решение по документу принято и ждёт отправки на сервер."));
    return;
  }
  const buttons = [];
  const decide = can("decide");
  if (folder === "visa" && decide && file) {
    buttons.push(
      h("button", { class: "btn approve", type: "button", "data-action": "visa-approve", onclick: () => openVisaSheet(card, file, "approved") }, "Согласовать"),
      h("button", { class: "btn remarks", type: "button", "data-action": "visa-remarks", onclick: () => openVisaSheet(card, file, "approved_with_remarks") }, "С замечаниями"),
      h("button", { class: "btn reject", type: "button", "data-action": "visa-reject", onclick: () => openVisaSheet(card, file, "rejected") }, "Не согласовать")
    );
  }
  const mySignature = ((card.route && card.route.signatories) || []).find((sg) => sg.position_id === pid());
  if (folder === "sign" && can("sign") && file && mySignature && mySignature.state === "signed") {
    clear(bar, h("p", { class: "muted", role: "status", "data-signed": "" }, "Документ подписан вами."));
    return;
  }
  if (folder === "sign" && can("sign") && file) {
    if (!navigator.onLine) buttons.push(h("p", { class: "muted offline-sign", role: "status" }, "Подписание — только при связи с сервером."));
    buttons.push(h("button", { class: "btn approve", type: "button", "data-action": "sign", onclick: () => openSignSheet(card, file) }, "Подписать"));
  }
  if (["resolve", "execute", "control", "info"].includes(folder) || folder === "drafts") {
    if (decide || can("prepare_resolutions")) {
      buttons.push(
        h(
          "button",
          { class: "btn primary", type: "button", "data-action": "resolve", onclick: () => openResolutionSheet(card) },
          decide ? "Резолюция" : "Подготовить проект резолюции"
        )
      );
    }
  }
  if (!buttons.length) {
    clear(bar, h("p", { class: "muted" }, decide ? "Для этой папки решений не требуется." : "Просмотр: в этом кабинете нет права решения."));
    return;
  }
  clear(bar, ...buttons);
}
