// A minimal event emitter shared by the client's objects. It runs the same in browsers and in Node
// (no EventTarget, no Node `events`): `on` returns a function that removes the listener, and a
// listener that throws is reported on `console.error` without stopping the others.

export class Emitter {
  // No listeners yet.
  constructor() {
    /** @type {Map<string, Set<Function>>} */
    this.listeners = new Map();
  }

  // Adds `listener` for `event`; returns a function that removes it.
  on(event, listener) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(listener);
    return () => this.off(event, listener);
  }

  // Adds a listener that runs once.
  once(event, listener) {
    const off = this.on(event, (...args) => {
      off();
      listener(...args);
    });
    return off;
  }

  // Removes `listener` from `event`.
  off(event, listener) {
    const set = this.listeners.get(event);
    if (set) set.delete(listener);
  }

  // Calls every listener of `event` with `args`, in the order they were added.
  emit(event, ...args) {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (err) {
        console.error(`ptyhub: a '${event}' listener threw`, err);
      }
    }
  }
}
