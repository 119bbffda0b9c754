// A stand-in for an xterm.js Terminal, enough for @ptyhub/client/xterm: it records what is written,
// answers a cursor-position query (ESC [ 6 n) in written text through onData at once, as xterm does
// while it parses, and calls a write's callback in a later turn, as xterm does once it has parsed it.
// reset() forgets what was written (counted in `resets`); resize() changes the size and tells the
// onResize listeners at once, as xterm does.

export class FakeTerminal {
  constructor() {
    this.written = '';
    this.resets = 0;
    this.cols = 80;
    this.rows = 24;
    this.dataListeners = new Set();
    this.resizeListeners = new Set();
  }

  // Appends `data`; a query in it is answered before the callback runs.
  write(data, callback) {
    const text = typeof data === 'string' ? data : new TextDecoder().decode(data);
    this.written += text;
    if (text.includes('\x1b[6n')) this.type('\x1b[1;1R');
    if (callback) setTimeout(callback, 0);
  }

  // RIS: a fresh screen.
  reset() {
    this.resets++;
    this.written = '';
  }

  onData(listener) {
    this.dataListeners.add(listener);
    return { dispose: () => this.dataListeners.delete(listener) };
  }

  onResize(listener) {
    this.resizeListeners.add(listener);
    return { dispose: () => this.resizeListeners.delete(listener) };
  }

  // What a user's keys (or xterm's own answers) produce.
  type(data) {
    for (const listener of this.dataListeners) listener(data);
  }

  // The emulator changed size.
  resize(cols, rows) {
    this.cols = cols;
    this.rows = rows;
    for (const listener of this.resizeListeners) listener({ cols, rows });
  }
}
