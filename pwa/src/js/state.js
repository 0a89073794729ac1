// The little shared state of the page and a tiny event bus between the modules.

export const state = {
  me: null, // {user, cabinets}
  cabinet: null, // the current cabinet from me.cabinets
  pendingDocs: new Set(), // document ids with a decision in the outbox
  swControlled: false,
};

const listeners = new Map();
export function on(event, fn) {
  if (!listeners.has(event)) listeners.set(event, new Set());
  listeners.get(event).add(fn);
  return () => listeners.get(event).delete(fn);
}
export function emit(event, detail) {
  for (const fn of listeners.get(event) || []) {
    try {
      fn(detail);
    } catch (err) {
      console.error(event, err);
    }
  }
}

export const can = (right) => Boolean(state.cabinet && state.cabinet.rights.includes(right));
export const pid = () => state.cabinet && state.cabinet.position_id;
