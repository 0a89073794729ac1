// Small DOM helpers and Russian formatting. Text always goes in as text nodes (never
// innerHTML), so document titles and comments cannot inject markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "value") el.value = value;
    else if (key === "checked") el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const FOLDERS = [
  { code: "sign", title: "На подпись", icon: "✍" },
  { code: "visa", title: "На визу", icon: "✓" },
  { code: "resolve", title: "На рассмотрение", icon: "✉" },
  { code: "drafts", title: "Проекты резолюций", icon: "✎" },
  { code: "execute", title: "На исполнении", icon: "⚙" },
  { code: "control", title: "На контроле", icon: "◎" },
  { code: "info", title: "Для сведения", icon: "ℹ" },
];
export const FOLDER_TITLE = Object.fromEntries(FOLDERS.map((f) => [f.code, f.title]));
export const OFFLINE_FOLDERS = ["sign", "visa", "resolve", "drafts"];

export const KIND = {
  incoming: "Входящий",
  outgoing: "Исходящий",
  internal: "Внутренний",
  citizen_appeal: "Обращение гражданина",
  npa: "Проект НПА",
  instruction: "Поручение",
};

export const ACTION = {
  sign: "Подписать",
  visa: "Согласовать",
  resolve: "Рассмотреть",
  issue: "Утвердить резолюцию",
  drafts: "Утвердить резолюцию",
  execute: "Исполнить",
  report: "Исполнить",
  control: "Проконтролировать",
  info: "Ознакомиться",
  read: "Ознакомиться",
};

export const ROLE = { own: "свой кабинет", assistant: "помощник", acting: "исполняющий обязанности" };

export const DECISION = {
  approved: "Согласовано",
  approved_with_remarks: "Согласовано с замечаниями",
  rejected: "Не согласовано",
};

export const HISTORY = {
  "document.created": "Документ создан",
  "document.registered": "Зарегистрирован",
  "document.version_added": "Новая версия файла",
  "document.signed": "Подписан",
  "document.forwarded": "Перенаправлен",
  "route.set": "Маршрут согласования задан",
  "route.started": "Маршрут запущен",
  "route.stage_completed": "Этап согласования завершён",
  "route.returned": "Возвращён на доработку",
  "route.restarted": "Маршрут перезапущен",
  "visa.requested": "Запрошена виза",
  "visa.approved": "Виза: согласовано",
  "visa.approved_with_remarks": "Виза: согласовано с замечаниями",
  "visa.rejected": "Виза: не согласовано",
  "visa.auto_approved": "Автоматическая виза",
  "sign.requested": "Запрошена подпись",
  "resolution.drafted": "Подготовлен проект резолюции",
  "resolution.issued": "Резолюция",
  "resolution.rejected": "Проект резолюции отклонён",
  "resolution.cancelled": "Резолюция отменена",
  "assignment.reported": "Отчёт об исполнении",
  "assignment.report_accepted": "Отчёт принят",
  "assignment.removed_from_control": "Снято с контроля",
};

const dateFmt = new Intl.DateTimeFormat("ru-RU", { day: "numeric", month: "long", year: "numeric" });
const shortDateFmt = new Intl.DateTimeFormat("ru-RU", { day: "2-digit", month: "2-digit", year: "numeric" });
const dateTimeFmt = new Intl.DateTimeFormat("ru-RU", {
  day: "numeric",
  month: "short",
  hour: "2-digit",
  minute: "2-digit",
});
const timeFmt = new Intl.DateTimeFormat("ru-RU", { hour: "2-digit", minute: "2-digit" });

export function parseDate(s) {
  // Dates (YYYY-MM-DD) are calendar days of the region: read them as local noon.
  return /^\d{4}-\d{2}-\d{2}$/.test(s) ? new Date(s + "T12:00:00") : new Date(s);
}
export const fmtDate = (s) => (s ? dateFmt.format(parseDate(s)) : "");
export const fmtShortDate = (s) => (s ? shortDateFmt.format(parseDate(s)) : "");
export const fmtDateTime = (s) => (s ? dateTimeFmt.format(new Date(s)) : "");

export function fmtSince(iso) {
  if (!iso) return "ещё не синхронизировано";
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  return "синхронизировано " + (today ? "в " + timeFmt.format(d) : dateTimeFmt.format(d));
}

export function plural(n, one, few, many) {
  const m10 = n % 10;
  const m100 = n % 100;
  if (m10 === 1 && m100 !== 11) return one;
  if (m10 >= 2 && m10 <= 4 && (m100 < 12 || m100 > 14)) return few;
  return many;
}

export function fmtSize(bytes) {
  if (bytes < 1024) return `${bytes} Б`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} КБ`;
  return `${(bytes / 1024 / 1024).toFixed(1)} МБ`;
}

// Working days between today and a date, Monday to Friday. The production calendar
// (holidays, transferred days) lives on the server; this is only a hint next to the field.
export function workingDaysUntil(dateStr) {
  const target = parseDate(dateStr);
  const day = new Date();
  day.setHours(12, 0, 0, 0);
  let n = 0;
  const step = target >= day ? 1 : -1;
  while (day.toDateString() !== target.toDateString() && Math.abs(n) < 400) {
    day.setDate(day.getDate() + step);
    const wd = day.getDay();
    if (wd !== 0 && wd !== 6) n += step;
  }
  return n;
}

export function addWorkingDays(n) {
  const day = new Date();
  day.setHours(12, 0, 0, 0);
  let left = n;
  while (left > 0) {
    day.setDate(day.getDate() + 1);
    if (day.getDay() !== 0 && day.getDay() !== 6) left--;
  }
  const pad = (x) => String(x).padStart(2, "0");
  return `${day.getFullYear()}-${pad(day.getMonth() + 1)}-${pad(day.getDate())}`;
}

let toastTimer = null;
export function toast(text, kind = "info") {
  const el = document.getElementById("toast");
  if (!el) return;
  clear(el, text);
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.hidden = true), kind === "error" ? 8000 : 3500);
}
