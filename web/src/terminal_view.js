// One open terminal: an xterm.js emulator fed by the output stream of `shell:terminal:<id>`.
//
// - Offsets: `next` is the offset of the next byte expected. A resubscription after a reconnect asks
//   for `since: next`, so nothing is lost or written twice; chunks that do not start at `next` are
//   counted as holes or overlaps (an overlap is skipped).
// - Replay: chunks with offset < replay.to are history; while xterm parses them, whatever it emits
//   (answers to terminal queries, and keys typed meanwhile) is dropped, not sent as input.
// - Flow control: characters handed to xterm and not yet parsed are counted; above flowControl.high the
//   terminal is paused (`shell.pause`), below flowControl.low resumed.
// - Access: input and resizing need write access; a `forbidden` answer makes the view read-only.
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { el, exitText, terminalLabel } from './dom.js';

// Characters handed to xterm and not yet parsed: pause above `high`, resume below `low`.
export const flowControl = { high: 128 * 1024, low: 16 * 1024 };

// The emulator's colours, read from the page's CSS variables (light or dark).
export function xtermTheme() {
  const css = getComputedStyle(document.documentElement);
  const v = (name) => css.getPropertyValue(name).trim();
  return {
    background: v('--term-bg'),
    foreground: v('--term-fg'),
    cursor: v('--term-fg'),
    cursorAccent: v('--term-bg'),
    selectionBackground: v('--term-selection'),
  };
}

export class TerminalView {
  // app: {conn, mayWrite(), onChange(view), isShortcut(event) → bool}
  constructor(app, terminal) {
    this.app = app;
    this.info = terminal;
    this.id = terminal.id;
    this.channel = terminal.channel;
    this.next = 0;
    this.replayTo = 0;
    this.subscribed = false;
    this.replayInFlight = 0;
    this.pendingChars = 0;
    this.paused = false;
    this.writable = app.mayWrite() ? null : false; // null: not known yet
    this.exit = null; // set by shell.exit, which follows the replay of an exited terminal
    this.stats = { chunks: 0, replayed: 0, holes: 0, overlaps: 0, gaps: 0, droppedInput: 0, pauses: 0, resumes: 0 };

    this.pane = el('div', { class: 'pane', role: 'tabpanel', id: `pane-${this.id}`, hidden: true });
    this.term = new Terminal({
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", "Liberation Mono", monospace',
      fontSize: 14,
      scrollback: 10000,
      cursorBlink: true,
      theme: xtermTheme(),
    });
    this.fitAddon = new FitAddon();
    this.term.loadAddon(this.fitAddon);
    this.term.loadAddon(new WebLinksAddon());
    this.term.attachCustomKeyEventHandler((event) => this.onKey(event));
    this.term.onData((data) => this.onInput(data));
    this.term.onResize(({ cols, rows }) => this.sendResize(cols, rows));
    this.term.open(this.pane);
  }

  get label() {
    return terminalLabel(this.info);
  }

  get readOnly() {
    return this.writable === false;
  }

  // Subscribes (again): from the start of the ring the first time, from `next` after that.
  async subscribe() {
    const data = { channel: this.channel };
    if (this.subscribed || this.next > 0) data.since = this.next;
    this.paused = false;
    const reply = await this.app.conn.request('subscribe', data);
    this.subscribed = true;
    const { terminal, replay } = reply.data;
    this.info = terminal;
    this.replayTo = replay.to;
    if (this.next === 0 && replay.from > 0) this.next = replay.from;
    this.afterAttach();
    this.app.onChange(this);
  }

  // Adopts the subscription that shell.create made (the stream starts at 0, nothing to replay).
  adoptCreated() {
    this.subscribed = true;
    this.afterAttach();
  }

  afterAttach() {
    if (this.readOnly) this.term.resize(this.info.cols, this.info.rows);
    else this.fit(true);
  }

  // Fits the emulator to its pane; `announce` sends the size even when it did not change.
  fit(announce = false) {
    if (this.pane.hidden || this.readOnly) return;
    const before = `${this.term.cols}x${this.term.rows}`;
    try {
      this.fitAddon.fit();
    } catch {
      return;
    }
    if (announce && before === `${this.term.cols}x${this.term.rows}`) this.sendResize(this.term.cols, this.term.rows);
  }

  sendResize(cols, rows) {
    if (this.readOnly || this.exit || !this.subscribed || this.app.conn.status !== 'live') return;
    if (this.info.cols === cols && this.info.rows === rows && this.writable === true) return;
    this.app.conn
      .request('shell.resize', { terminalId: this.id, cols, rows })
      .then(() => {
        this.info = { ...this.info, cols, rows };
        this.setWritable(true);
      })
      .catch((err) => {
        if (err.code === 'forbidden') this.setWritable(false);
      });
  }

  setWritable(writable) {
    if (this.writable === writable) return;
    this.writable = writable;
    if (!writable) this.term.resize(this.info.cols, this.info.rows);
    this.app.onChange(this);
  }

  onInput(data) {
    if (this.replayInFlight > 0 || this.readOnly || this.exit) {
      this.stats.droppedInput++;
      return;
    }
    if (this.app.conn.status !== 'live') return;
    this.app.conn.request('shell.input', { terminalId: this.id, data }).then(
      () => this.setWritable(true),
      (err) => {
        if (err.code === 'forbidden') this.setWritable(false);
      },
    );
  }

  onKey(event) {
    if (event.type !== 'keydown') return true;
    // Ctrl+Shift+C copies the selection; Ctrl+Shift+V is left to the browser's paste.
    if (event.ctrlKey && event.shiftKey && (event.key === 'C' || event.key === 'c')) {
      const text = this.term.getSelection();
      if (text && navigator.clipboard) navigator.clipboard.writeText(text).catch(() => {});
      return false;
    }
    if (event.ctrlKey && event.shiftKey && (event.key === 'V' || event.key === 'v')) return false;
    // The page's shortcuts bubble up to the document's listener.
    return !this.app.isShortcut(event);
  }

  // A message of this terminal's channel.
  handle(msg) {
    const d = msg.data || {};
    switch (msg.type) {
      case 'shell.output':
        this.onOutput(d);
        break;
      case 'shell.gap':
        this.stats.gaps++;
        this.term.write(`\r\n\x1b[2m[${d.to - d.from} bytes of output were lost]\x1b[0m\r\n`);
        this.next = d.to;
        break;
      case 'shell.resized':
        this.info = { ...this.info, cols: d.cols, rows: d.rows };
        if (this.readOnly) this.term.resize(d.cols, d.rows);
        this.app.onChange(this);
        break;
      case 'shell.exit':
        if (!this.exit) {
          this.exit = d;
          this.info = { ...this.info, state: 'exited', exitCode: d.exitCode, signal: d.signal };
          this.term.write(`\r\n\x1b[2m[${exitText(this.info)}]\x1b[0m\r\n`);
        }
        this.app.onChange(this);
        break;
      case 'unsubscribed':
        this.subscribed = false;
        this.app.onChange(this);
        break;
      default:
        break;
    }
  }

  onOutput(d) {
    if (d.next <= this.next && this.stats.chunks > 0) {
      this.stats.overlaps++;
      return;
    }
    if (d.offset > this.next && this.stats.chunks > 0) this.stats.holes++;
    if (d.offset < this.next) this.stats.overlaps++;
    this.stats.chunks++;
    this.next = d.next;
    const text = d.encoding === 'base64' ? Uint8Array.from(atob(d.data), (c) => c.charCodeAt(0)) : d.data;
    const replayed = d.offset < this.replayTo;
    const size = text.length;
    if (replayed) {
      this.replayInFlight++;
      this.stats.replayed++;
    }
    this.pendingChars += size;
    if (!this.paused && this.pendingChars > flowControl.high) this.setPaused(true);
    this.term.write(text, () => {
      if (replayed) this.replayInFlight--;
      this.pendingChars -= size;
      if (this.paused && this.pendingChars < flowControl.low) this.setPaused(false);
    });
  }

  setPaused(paused) {
    this.paused = paused;
    if (paused) this.stats.pauses++;
    else this.stats.resumes++;
    if (this.app.conn.status !== 'live') return;
    this.app.conn.request(paused ? 'shell.pause' : 'shell.resume', { terminalId: this.id }).catch(() => {});
  }

  show(visible) {
    this.pane.hidden = !visible;
    if (visible) {
      this.fit(false);
      this.term.focus();
    }
  }

  setTheme(theme) {
    this.term.options.theme = theme;
  }

  // The screen and scrollback as text, wrapped lines joined (for the tests and for copying).
  bufferText() {
    const buffer = this.term.buffer.active;
    const lines = [];
    for (let i = 0; i < buffer.length; i++) {
      const line = buffer.getLine(i);
      if (!line) continue;
      const text = line.translateToString(true);
      if (line.isWrapped && lines.length > 0) lines[lines.length - 1] += text;
      else lines.push(text);
    }
    while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    return lines.join('\n');
  }

  dispose() {
    this.term.dispose();
    this.pane.remove();
  }
}
