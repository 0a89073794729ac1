// Push notifications: the hook for the push issue. The service worker already shows
// notifications (Russian text) and opens the document on click (sw.js "push" and
// "notificationclick"). What is left for that issue: ask the person's consent after login,
// then subscribe with the server's VAPID key and register the subscription:
//   GET  /api/v1/push/vapid-public-key -> {public_key}
//   reg.pushManager.subscribe({userVisibleOnly: true, applicationServerKey})
//   POST /api/v1/push/subscriptions {endpoint, keys: {p256dh, auth}, device_name}
// Consent must come from a tap (iPadOS only allows it from a user gesture and only for an
// installed web app), so setupPush() must not call Notification.requestPermission() itself.

export const pushSupported = () => "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;

export function setupPush() {
  // Intentionally empty until the push issue lands.
}
