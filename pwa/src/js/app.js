// Boot, login, the cabinet switcher, the router and the service-worker lifecycle.
import { AuthError, HttpError, NetworkError, core, get, login, logout, shareToken } from "./api.js";
import { renderDocument } from "./document.js";
import { setupPush, unsubscribe } from "./push.js";
import { on, state } from "./state.js";
import { refreshSyncUI, replayNow, showOfflineStatus, syncCabinet } from "./sync.js";
import { ROLE, clear, h, toast } from "./ui.js";
import { renderHome, renderQueue } from "./views.js";

const $ = (id) => document.getElementById(id);

// --- service worker -----------------------------------------------------------------------
async function registerWorker() {
  if (!("serviceWorker" in navigator)) return;
  try {
    const offerUpdate = (worker) => {
      const bar = $("update");
      bar.hidden = false;
      bar.querySelector("button").onclick = () => worker.postMessage({ type: "skip-waiting" });
    };
    let failures = 0;
    const watched = new WeakSet();
    const install = async () => {
      const reg = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
      const watch = (w) => {
        if (!w || watched.has(w)) return;
        watched.add(w);
        w.addEventListener("statechange", () => {
          if (w.state === "installed" && navigator.serviceWorker.controller) offerUpdate(w);
          // The first install failed (a shell file could not be fetched: the server was
          // restarting, say): the registration is gone with it. Try again shortly, or this
          // page would stay without offline reading until the next visit.
          if (w.state === "redundant" && !reg.active && !navigator.serviceWorker.controller && failures < 5) {
            failures++;
            console.warn("service worker install failed; retrying");
            setTimeout(() => install().catch((err) => console.warn("service worker not registered", err)), 2000 * failures);
          }
        });
      };
      // The first install may already be under way when register() resolves.
      watch(reg.installing);
      reg.addEventListener("updatefound", () => watch(reg.installing));
      if (reg.waiting && navigator.serviceWorker.controller) offerUpdate(reg.waiting);
    };
    await install();
    let reloading = false;
    let hadController = Boolean(navigator.serviceWorker.controller);
    navigator.serviceWorker.addEventListener("controllerchange", () => {
      const first = !state.swControlled;
      state.swControlled = true;
      shareToken();
      // A prefetch that ran before the worker took control could not cache page images:
      // run it again now that it can.
      if (first && state.me) syncCabinet();
      // The first claim is not an update; a later change is the person's "Обновить".
      if (hadController && !reloading) {
        reloading = true;
        location.reload();
      }
      hadController = true;
    });
    navigator.serviceWorker.addEventListener("message", (e) => {
      if (e.data && e.data.type === "open-url") {
        const url = new URL(e.data.url, location.origin);
        if (url.origin === location.origin) location.hash = url.hash;
        return;
      }
      if (e.data && e.data.type === "outbox-replayed") {
        refreshSyncUI();
        if (e.data.sent) toast(`Отправлено решений: ${e.data.sent}`);
        if (e.data.refused && e.data.refused.length) toast("Сервер не принял решение — см. сообщение вверху", "error");
        route();
      }
    });
  } catch (err) {
    console.warn("service worker not registered", err);
  }
}

// Resolves once a worker controls the page (it claims clients on activate), so that images
// and prefetches go through its caches; gives up after a few seconds.
function workerControls(timeoutMs = 8000) {
  if (!("serviceWorker" in navigator)) return Promise.resolve(false);
  if (navigator.serviceWorker.controller) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), timeoutMs);
    navigator.serviceWorker.addEventListener("controllerchange", () => (clearTimeout(t), resolve(true)), { once: true });
  });
}

// --- login --------------------------------------------------------------------------------
function showLogin(message) {
  $("app").hidden = true;
  const screen = $("login-screen");
  screen.hidden = false;
  const error = h("p", { class: "form-error", role: "alert", hidden: !message }, message || "");
  const loginInput = h("input", { id: "login", name: "login", "data-testid": "login", autocomplete: "username", autocapitalize: "none", spellcheck: "false", required: true });
  const password = h("input", { id: "password", name: "password", type: "password", "data-testid": "password", autocomplete: "current-password", required: true });
  const submit = h("button", { class: "btn primary wide", type: "submit", "data-testid": "login-submit" }, "Войти");
  const form = h(
    "form",
    { class: "login-card", "aria-labelledby": "login-title" },
    h("img", { src: "/icons/icon-192.png", alt: "", width: 72, height: 72 }),
    h("h1", { id: "login-title" }, "Кабинет руководителя"),
    h("label", { for: "login" }, "Логин"),
    loginInput,
    h("label", { for: "password" }, "Пароль"),
    password,
    error,
    submit
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    submit.disabled = true;
    error.hidden = true;
    try {
      await login(loginInput.value.trim(), password.value);
      password.value = "";
      await start();
    } catch (err) {
      const text =
        err instanceof HttpError && err.status === 401
          ? "Неверный логин или пароль."
          : err instanceof HttpError && err.status === 429
            ? "Слишком много попыток. Подождите немного и попробуйте снова."
            : navigator.onLine
              ? `Не удалось войти: ${err.message}`
              : "Нет связи с сервером. Для первого входа нужна связь.";
      clear(error, text);
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  clear(screen, form);
  loginInput.focus();
}

// --- the app ------------------------------------------------------------------------------
async function loadMe() {
  try {
    const me = await get("/me");
    await core.kv.set("me", me);
    return me;
  } catch (err) {
    if (err instanceof AuthError) throw err;
    const saved = await core.kv.get("me");
    if (saved) return saved;
    throw err;
  }
}

async function start() {
  let me;
  try {
    me = await loadMe();
  } catch (err) {
    showLogin(err instanceof NetworkError ? "Нет связи с сервером." : undefined);
    return;
  }
  state.me = me;
  const savedPid = await core.kv.get("cabinet");
  state.cabinet = me.cabinets.find((c) => c.position_id === savedPid) || me.cabinets[0] || null;
  $("login-screen").hidden = true;
  $("app").hidden = false;
  renderHeader();
  if (!state.cabinet) {
    clear($("view"), h("p", { class: "empty" }, "У вас нет доступных кабинетов. Обратитесь к администратору."));
    return;
  }
  await refreshSyncUI();
  await showOfflineStatus();
  await route();
  replayNow();
  state.swControlled = await workerControls();
  shareToken();
  syncCabinet();
  setupPush(); // offers a consent button; asks for permission only from that tap
}

function renderHeader() {
  const select = $("cabinet");
  clear(
    select,
    state.me.cabinets.map((c) =>
      h("option", { value: c.position_id, selected: c === state.cabinet }, `${c.title} — ${ROLE[c.role] || c.role}`)
    )
  );
  select.disabled = state.me.cabinets.length < 2;
  select.onchange = async () => {
    state.cabinet = state.me.cabinets.find((c) => c.position_id === select.value);
    await core.kv.set("cabinet", state.cabinet.position_id);
    await showOfflineStatus();
    location.hash = "#/";
    await route();
    syncCabinet();
  };
  $("user").textContent = state.me.user.full_name;
  $("logout").onclick = async () => {
    await unsubscribe(); // needs the tokens, so before logout() forgets them
    await logout();
    state.me = null;
    state.cabinet = null;
    location.hash = "";
    showLogin();
  };
}

let routeSeq = 0;
async function route() {
  if (!state.cabinet) return;
  // Only "#/…" are routes; "#view" (the skip link) is an in-page anchor.
  if (location.hash && !location.hash.startsWith("#/")) return;
  const seq = ++routeSeq;
  const view = $("view");
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").filter(Boolean);
  document.body.dataset.view = parts[0] || "home";
  try {
    if (parts[0] === "f" && parts[1]) await renderQueue(view, parts[1]);
    else if (parts[0] === "d" && parts[1]) await renderDocument(view, parts[1], params.get("f"));
    else await renderHome(view);
  } catch (err) {
    if (err instanceof AuthError) return showLogin("Сеанс истёк. Войдите снова.");
    throw err;
  }
  if (seq === routeSeq) {
    const title = view.querySelector(".view-title");
    if (title) title.focus({ preventScroll: true });
  }
}

function online() {
  document.body.classList.toggle("is-offline", !navigator.onLine);
  showOfflineStatus();
}

window.addEventListener("hashchange", route);
window.addEventListener("online", () => {
  online();
  if (!state.me) return;
  replayNow().then(() => syncCabinet());
});
window.addEventListener("offline", online);
on("auth-required", () => showLogin("Сеанс истёк. Войдите снова — решения, ждущие отправки, сохранены."));
on("outbox-sent", () => {
  route();
  syncCabinet();
});
on("decision-queued", () => route());
on("signed", () => {
  route();
  syncCabinet();
});

async function boot() {
  online();
  registerWorker();
  const refreshToken = await core.kv.get("refresh_token");
  if (!refreshToken) return showLogin();
  try {
    await core.refresh();
  } catch (err) {
    if (err instanceof AuthError) return showLogin();
    // No connection: go on with what the device has saved.
  }
  await start();
}

boot();
