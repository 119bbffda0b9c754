// One open terminal: an xterm.js emulator bound to an Attachment of @ptyhub/client, which follows
// `shell:terminal:<id>` across reconnections (docs/protocol.md §4, §7: it subscribes again with `since`
// = the next offset, every byte once; `shell.gap` is written as a note).
//
// - Attaching to a terminal that runs already starts from a snapshot of its screen (docs/protocol.md §6,
//   Snapshots): the binding resets xterm and writes it at the snapshot's size, and the view fits
//   itself (and announces its size) only once it is parsed. Nothing is replayed, so nothing in the
//   history can be answered. Resumptions after a drop replay from `since` as before.
// - Presence (§6): the users following the terminal (`viewers` of the attachment) are shown on its tab,
//   marked ✎ when they may type.
// - The binding (`@ptyhub/client/xterm`) writes output, drops what xterm emits while it parses replayed
//   output (answers to terminal queries, and keys typed meanwhile), and pauses the terminal
//   (`shell.pause`, §6) while more than flowControl.high characters wait to be parsed, resuming it below
//   flowControl.low.
// - Access: input and resizing need write access; a `forbidden` answer makes the view read-only, and a
//   read-only view follows the size others set (`shell.resized`).
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { WebLinksAddon } from '@xterm/addon-web-links';
import { bindXterm } from '@ptyhub/client/xterm';
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
  // app: {client, mayWrite(), onChange(view), isShortcut(event) → bool, renderTabs()}; attachment: the
  // terminal's Attachment; prefill: output already received for it (a git operation's)
  constructor(app, terminal, attachment, prefill = '') {
    this.app = app;
    this.info = terminal;
    this.id = terminal.id;
    this.channel = terminal.channel;
    this.attachment = attachment;
    this.subscribed = attachment.subscribed;
    this.writable = app.mayWrite() ? null : false; // null: not known yet
    this.exit = attachment.exit; // set by shell.exit, which follows the replay of an exited terminal
    this.viewers = attachment.viewers; // presence: [{user, role, since, connections}] or null

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
    this.term.open(this.pane);
    if (prefill) this.term.write(prefill);
    this.binding = bindXterm(this.term, attachment, {
      flowControl,
      input: () => !this.readOnly,
      resize: (cols, rows) => this.shouldResize(cols, rows),
      onSent: (what, detail) => this.onSent(what, detail),
      onError: (err) => this.onRefused(err),
      exitNote: (exit) => `\r\n\x1b[2m[${exitText({ ...this.info, state: 'exited', ...exit })}]\x1b[0m\r\n`,
      onSnapshot: () => this.afterAttach(),
    });
    this.offs = [
      attachment.on('subscribed', ({ terminal }) => this.onSubscribed(terminal)),
      attachment.on('resized', ({ cols, rows }) => this.onResized(cols, rows)),
      attachment.on('exit', (exit) => this.onExit(exit)),
      attachment.on('unsubscribed', () => this.onUnsubscribed()),
      attachment.on('close', (err) => this.onClosed(err)),
      attachment.on('viewers', (viewers) => this.onViewers(viewers)),
    ];
  }

  get label() {
    return terminalLabel(this.info);
  }

  get readOnly() {
    return this.writable === false;
  }

  // The offset of the next byte expected (for the tests).
  get next() {
    return this.attachment.next;
  }

  get paused() {
    return this.binding.paused;
  }

  // The attachment's counters and the keys dropped by the binding (for the tests).
  get stats() {
    return { ...this.attachment.stats, droppedInput: this.binding.stats.droppedInput };
  }

  // Every (re)subscription: the terminal as it is now, and our size announced again (after the
  // snapshot, when one follows: it is drawn at the terminal's size, see the binding's onSnapshot).
  onSubscribed(terminal) {
    this.info = terminal;
    this.subscribed = true;
    if (!this.attachment.snapshotPending) this.afterAttach();
    this.app.onChange(this);
  }

  // Presence changed: the tab shows who follows the terminal.
  onViewers(viewers) {
    this.viewers = viewers;
    this.app.renderTabs();
  }

  // A view opened on an attachment that is already subscribed (a terminal just created).
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

  // Whether a size is worth sending: writable (or not known yet), subscribed, live, and new.
  shouldResize(cols, rows) {
    if (this.readOnly || this.exit || !this.subscribed || !this.app.client.live) return false;
    return !(this.info.cols === cols && this.info.rows === rows && this.writable === true);
  }

  sendResize(cols, rows) {
    if (!this.shouldResize(cols, rows)) return;
    this.attachment.resize(cols, rows).then(() => this.onSent('resize', { cols, rows }), (err) => this.onRefused(err));
  }

  // A request of ours was accepted: we may write.
  onSent(what, detail) {
    if (what === 'resize') this.info = { ...this.info, cols: detail.cols, rows: detail.rows };
    this.setWritable(true);
  }

  onRefused(err) {
    if (err.code === 'forbidden') this.setWritable(false);
  }

  setWritable(writable) {
    if (this.writable === writable) return;
    this.writable = writable;
    if (!writable) this.term.resize(this.info.cols, this.info.rows);
    this.app.onChange(this);
  }

  onResized(cols, rows) {
    this.info = { ...this.info, cols, rows };
    if (this.readOnly) this.term.resize(cols, rows);
    this.app.onChange(this);
  }

  onExit(exit) {
    this.exit = exit;
    this.info = { ...this.info, state: 'exited', exitCode: exit.exitCode, signal: exit.signal };
    this.app.onChange(this);
  }

  onUnsubscribed() {
    this.subscribed = false;
    this.app.onChange(this);
  }

  // The attachment ended: detached by us, or the terminal is gone after a reconnection (not_found).
  onClosed(err) {
    this.subscribed = false;
    if (err && err.code === 'not_found') {
      this.term.write('\r\n\x1b[2m[this terminal is gone]\x1b[0m\r\n');
      this.app.renderTabs();
    }
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

  // Unwires the view (the attachment is detached by the caller, or kept by its git operation).
  dispose() {
    for (const off of this.offs) off();
    this.binding.dispose();
    this.term.dispose();
    this.pane.remove();
  }
}
