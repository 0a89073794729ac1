// Push notifications. Consent is asked from a tap on a clear Russian button after login, never
// on page load (iPadOS allows it only from a user gesture and only in an installed web app).
// Then: the server's VAPID key → PushManager.subscribe → POST /push/subscriptions; the
// subscription id is kept so logout can DELETE it (and the browser subscription is dropped).
// The service worker shows the notifications (Russian text) and opens payload.url on a click.
import { core, get, send } from "./api.js";
import { state } from "./state.js";
import { h, toast } from "./ui.js";

const KV_KEY = "push-subscription"; // {id, endpoint, user_id}
const DISMISSED = "push-dismissed"; // per device (localStorage survives logout)

export const pushSupported = () => "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

function base64UrlToBytes(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4);
  const bin = atob(b64);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function bytesToBase64Url(buffer) {
  const bytes = new Uint8Array(buffer);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function deviceName() {
  const ua = navigator.userAgent;
  if (/iPad|Macintosh.*Mobile/.test(ua)) return "iPad";
  if (/Android/.test(ua)) return "Android";
  return "Браузер";
}

function sameKey(a, b) {
  if (!a || !b || a.byteLength !== b.byteLength) return false;
  const x = new Uint8Array(a);
  for (let i = 0; i < x.length; i++) if (x[i] !== b[i]) return false;
  return true;
}

// Subscribe this browser and register it with the server. Needs permission already granted.
export async function subscribe() {
  const reg = await navigator.serviceWorker.ready;
  const { public_key } = await get("/push/vapid-public-key");
  const appKey = base64UrlToBytes(public_key);
  let sub = await reg.pushManager.getSubscription();
  // A subscription made for another server key cannot be used: replace it.
  if (sub && sub.options && sub.options.applicationServerKey && !sameKey(sub.options.applicationServerKey, appKey)) {
    await sub.unsubscribe();
    sub = null;
  }
  if (!sub) sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: appKey });
  const json = sub.toJSON ? sub.toJSON() : {};
  const keys = json.keys || {
    p256dh: bytesToBase64Url(sub.getKey("p256dh")),
    auth: bytesToBase64Url(sub.getKey("auth")),
  };
  const out = await send("POST", "/push/subscriptions", {
    endpoint: sub.endpoint,
    keys: { p256dh: keys.p256dh, auth: keys.auth },
    device_name: deviceName(),
  });
  await core.kv.set(KV_KEY, { id: out.id, endpoint: sub.endpoint, user_id: state.me && state.me.user.id });
  return out;
}

// On logout, before the tokens are forgotten: delete the server's record and the browser's
// subscription, so the next person on this tablet gets none of these notifications.
export async function unsubscribe() {
  let saved = null;
  try {
    saved = await core.kv.get(KV_KEY);
    if (saved && saved.id) await send("DELETE", `/push/subscriptions/${saved.id}`);
  } catch {
    // Offline or already gone: the server drops dead subscriptions when the push service says so.
  }
  try {
    const reg = await navigator.serviceWorker?.getRegistration();
    const sub = reg && reg.pushManager ? await reg.pushManager.getSubscription() : null;
    if (sub) await sub.unsubscribe();
  } catch {
    // Nothing to drop.
  }
  if (saved) await core.kv.del(KV_KEY).catch(() => {});
}

function offerBar(text, ...buttons) {
  const bar = document.getElementById("push-offer");
  if (!bar) return;
  bar.replaceChildren(h("span", {}, text), ...buttons);
  bar.hidden = false;
}

function hideBar() {
  const bar = document.getElementById("push-offer");
  if (bar) bar.hidden = true;
}

// After login: re-register silently where permission is already granted; otherwise offer a
// button (the permission prompt comes only from that tap).
export async function setupPush() {
  hideBar();
  if (!pushSupported() || !state.me) return;
  const permission = Notification.permission;
  if (permission === "granted") {
    try {
      const saved = await core.kv.get(KV_KEY);
      if (!saved || saved.user_id !== state.me.user.id) await subscribe();
    } catch (err) {
      console.warn("push subscription failed", err);
    }
    return;
  }
  if (permission === "denied" || localStorage.getItem(DISMISSED)) return;
  const allow = h("button", { class: "btn primary", type: "button", "data-action": "push-enable" }, "Включить уведомления");
  const later = h("button", { class: "btn ghost", type: "button", "data-action": "push-later" }, "Не сейчас");
  allow.addEventListener("click", async () => {
    allow.disabled = true;
    try {
      const result = await Notification.requestPermission();
      if (result !== "granted") {
        hideBar();
        toast("Уведомления не включены: браузер не дал разрешения. Их можно включить в настройках браузера.");
        return;
      }
      await subscribe();
      hideBar();
      toast("Уведомления включены");
    } catch (err) {
      allow.disabled = false;
      toast(`Не удалось включить уведомления: ${err.message || err}`, "error");
    }
  });
  later.addEventListener("click", () => {
    localStorage.setItem(DISMISSED, "1");
    hideBar();
  });
  offerBar("Получать уведомления о новых документах на подпись, визу и рассмотрение?", allow, later);
}
