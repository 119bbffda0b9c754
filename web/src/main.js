// The ptyhub page: sign-in, the connection status, the terminal list, tabs of open terminals and the
// git monitor, wired to one PtyhubClient (@ptyhub/client, clients/js), which owns the connection: it
// authenticates, reconnects (at once after a live upgrade's 1012, with backoff otherwise) and resumes
// every open terminal and git operation from where its output stopped. `window.ptyhub` exposes
// read-only views of the state and a way to drop the connection, for the browser tests.
import '@xterm/xterm/css/xterm.css';
import './style.css';
import { PtyhubClient, readClaims } from '@ptyhub/client';
import { clearToken, storeToken, takeToken } from './token.js';
import { TerminalView, flowControl, xtermTheme } from './terminal_view.js';
import { TerminalList } from './terminal_list.js';
import { GitMonitor } from './git_monitor.js';
import { el, exitText, replaceChildren } from './dom.js';

const $ = (id) => document.getElementById(id);

// The WebSocket beside the page: `ws` relative to it, so the page works at a sub-path (base_path) and
// behind a proxy that strips its prefix; wss: under https:.
function socketUrl(pageLocation) {
  const url = new URL('ws', pageLocation.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.search = '';
  url.hash = '';
  return url.href;
}
const kExpiryWarningMs = 5 * 60 * 1000;
const statusHistory = []; // every status the connection went through, for the tests

class App {
  constructor() {
    this.client = null;
    this.watch = null;
    this.user = null;
    this.scopes = [];
    this.expiresAt = null;
    this.views = new Map(); // terminal id → TerminalView, in tab order
    this.activeId = null;
    this.list = new TerminalList(this, $('terminal-rows'), $('terminal-empty'));
    this.git = new GitMonitor(this, {
      form: $('git-form'), error: $('git-error'), list: $('git-ops'), empty: $('git-empty'), detail: $('git-detail'),
    });
    this.bindUi();
    setInterval(() => this.renderUser(), 15000);
  }

  bindUi() {
    $('create-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.create($('create-form').elements.name.value.trim());
    });
    $('signin-form').addEventListener('submit', (event) => {
      event.preventDefault();
      this.signIn($('signin-token').value.trim());
    });
    $('signin-cancel').addEventListener('click', () => $('signin').close());
    $('token-button').addEventListener('click', () => this.showSignIn(''));
    $('signout-button').addEventListener('click', () => this.signOut());
    $('retry-button').addEventListener('click', () => this.client && this.client.reconnectNow());
    $('tabs').addEventListener('keydown', (event) => this.onTabKey(event));
    document.addEventListener('keydown', (event) => {
      if (!this.onKey(event)) event.preventDefault();
    });
    new ResizeObserver(() => this.fitActive()).observe($('panes'));
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
      const theme = xtermTheme();
      for (const view of this.views.values()) view.setTheme(theme);
    });
  }

  // ---- sign-in ----

  start() {
    const token = takeToken();
    if (token) this.connect(token);
    else this.showSignIn('');
  }

  showSignIn(message) {
    $('signin-error').textContent = message;
    $('signin-token').value = '';
    if (!$('signin').open) $('signin').showModal();
    $('signin-token').focus();
  }

  async signIn(token) {
    if (!token) return;
    if (this.client && this.client.live) {
      // A fresh token for the live connection: re-authenticate it (same user, later expiry; §2).
      try {
        await this.client.refresh(token);
        storeToken(token);
        $('signin').close();
      } catch (err) {
        $('signin-error').textContent = `${err.code}: ${err.message}`;
      }
      return;
    }
    storeToken(token);
    $('signin').close();
    if (this.client) {
      // Not live (signed out, or waiting to reconnect): the next connection presents the new token, and
      // the open terminals resume on it.
      this.client.setToken(token);
      this.client.connect();
      this.client.reconnectNow();
      return;
    }
    this.connect(token);
  }

  signOut() {
    if (this.client) this.client.close();
    this.client = null;
    this.watch = null;
    clearToken();
    for (const id of [...this.views.keys()]) this.closeView(id);
    this.list.reset([]);
    this.user = null;
    this.renderUser();
    this.showSignIn('');
  }

  connect(token) {
    if (this.client) this.client.close();
    const client = new PtyhubClient({ url: socketUrl(location), token, connect: false });
    this.client = client;
    client.on('status', (status, detail) => this.renderStatus(status, detail));
    client.on('live', (ok) => this.onAuth(ok));
    client.on('auth', (ok) => this.onAuth(ok));
    client.on('message', (msg) => this.onMessage(msg));
    client.on('signedout', (reason) => {
      clearToken();
      this.showSignIn(`Signed out: ${reason}`);
    });
    // The live list, subscribed again by the client after every reconnection.
    this.watch = client.watchTerminals();
    this.watch.on('snapshot', (terminals) => this.list.reset(terminals));
    this.watch.on('message', (msg) => this.onListMessage(msg));
    client.connect();
  }

  onAuth(ok) {
    this.user = ok.user;
    this.scopes = ok.scopes || [];
    this.expiresAt = ok.expiresAt ? Date.parse(ok.expiresAt) : null;
    if (!this.expiresAt) {
      const claims = readClaims(this.client.token);
      if (claims && claims.exp) this.expiresAt = claims.exp * 1000;
    }
    this.renderUser();
  }

  hasScope(scope) {
    return this.scopes.includes(scope) || this.scopes.includes('admin');
  }

  isOpen(id) {
    return this.views.has(id);
  }

  // Whether input may be tried at all (the server has the last word for shared terminals).
  mayWrite() {
    return this.hasScope('terminal:write');
  }

  // Whether the user is known to be allowed to write to `t`.
  canWrite(t) {
    if (!this.mayWrite()) return false;
    const view = this.views.get(t.id);
    if (view && view.writable !== null) return view.writable;
    return t.owner === this.user || this.scopes.includes('admin');
  }

  // ---- messages ----

  // A message of `shell:terminals` (the client keeps the list itself; the page renders it).
  onListMessage(msg) {
    this.list.handle(msg);
    this.git.handleLifecycle(msg);
    if (msg.type === 'shell.exit' || msg.type === 'shell.removed' || msg.type === 'shell.created') this.renderTabs();
  }

  // Any message: an error that answers no request is shown (the channels are the client's business).
  onMessage(msg) {
    if (msg.type === 'error' && msg.id === undefined && msg.data) this.renderStatus(this.client.status, null, msg.data.message);
  }

  // ---- terminals ----

  estimateSize() {
    const active = this.views.get(this.activeId);
    if (active) return { cols: active.term.cols, rows: active.term.rows };
    const panes = $('panes').getBoundingClientRect();
    return {
      cols: Math.max(20, Math.min(400, Math.floor((panes.width - 24) / 8.5))),
      rows: Math.max(5, Math.min(200, Math.floor((panes.height - 12) / 17))),
    };
  }

  async create(name) {
    const data = this.estimateSize();
    if (name) data.name = name;
    try {
      const attachment = await this.client.createTerminal(data);
      const view = this.openView(attachment.terminal, attachment);
      view.adoptCreated();
      $('create-form').elements.name.value = '';
      this.activate(view.id);
    } catch (err) {
      this.renderStatus(this.client.status, null, `cannot create a terminal: ${err.message}`);
    }
  }

  attach(id) {
    if (this.views.has(id)) {
      this.activate(id);
      return;
    }
    const terminal = this.list.get(id);
    if (!terminal) return;
    // A git operation we follow already has the terminal's attachment: the view shares it.
    const followed = this.git.followed(id);
    const attachment = followed ? followed.attachment : this.client.attach(id);
    const view = this.openView(terminal, attachment, followed ? followed.output : '');
    this.activate(id);
    if (followed) return;
    attachment.ready.catch((err) => {
      this.renderStatus(this.client.status, null, `cannot attach: ${err.message}`);
      this.closeView(id);
    });
  }

  openView(terminal, attachment, prefill = '') {
    const view = new TerminalView(this, terminal, attachment, prefill);
    this.views.set(view.id, view);
    $('panes').append(view.pane);
    this.renderTabs();
    this.list.render();
    return view;
  }

  async detach(id) {
    const view = this.views.get(id);
    if (!view) return;
    this.closeView(id);
    // The terminal keeps running; a git operation we follow keeps its attachment.
    if (!this.git.followed(id)) view.attachment.detach();
  }

  closeView(id) {
    const view = this.views.get(id);
    if (!view) return;
    view.dispose();
    this.views.delete(id);
    if (this.activeId === id) {
      const ids = [...this.views.keys()];
      this.activeId = null;
      if (ids.length) this.activate(ids[ids.length - 1]);
    }
    this.renderTabs();
    this.list.render();
  }

  kill(id) {
    this.client.kill(id).catch((err) => {
      this.renderStatus(this.client.status, null, `cannot kill: ${err.message}`);
    });
  }

  activate(id) {
    this.activeId = id;
    for (const view of this.views.values()) view.show(view.id === id);
    this.renderTabs();
  }

  fitActive() {
    const view = this.views.get(this.activeId);
    if (view) view.fit(false);
  }

  // A view's state changed (access, size, exit).
  onChange(view) {
    this.list.update(view.id, { cols: view.info.cols, rows: view.info.rows });
    if (view.info.state === 'exited') {
      this.list.update(view.id, { state: 'exited', exitCode: view.info.exitCode, signal: view.info.signal });
    }
    this.list.render();
    this.renderTabs();
  }

  // ---- keyboard ----

  // Whether a key is one of the page's shortcuts (a terminal then leaves it to the page).
  isShortcut(event) {
    return event.type === 'keydown' && event.ctrlKey && event.shiftKey &&
      ['ArrowRight', 'ArrowLeft', 'Enter', 'E', 'e'].includes(event.key);
  }

  // Page shortcuts, from the document's keydown listener; false when the key was used.
  onKey(event) {
    if (!this.isShortcut(event)) return true;
    const ids = [...this.views.keys()];
    const at = ids.indexOf(this.activeId);
    if (event.key === 'ArrowRight' && ids.length) this.activate(ids[(at + 1) % ids.length]);
    else if (event.key === 'ArrowLeft' && ids.length) this.activate(ids[(at - 1 + ids.length) % ids.length]);
    else if (event.key === 'Enter') this.create('');
    else if (event.key === 'E' || event.key === 'e') $('create-form').elements.name.focus();
    else return true;
    return false;
  }

  onTabKey(event) {
    if (event.key !== 'ArrowRight' && event.key !== 'ArrowLeft') return;
    const tabs = [...$('tabs').querySelectorAll('.tab-label')];
    const at = tabs.indexOf(document.activeElement);
    if (at < 0) return;
    const next = tabs[(at + (event.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length];
    next.focus();
    event.preventDefault();
  }

  // ---- rendering ----

  renderStatus(status, detail, note) {
    if (statusHistory[statusHistory.length - 1] !== status) statusHistory.push(status);
    if (statusHistory.length > 100) statusHistory.shift();
    const pill = $('status');
    pill.dataset.status = status;
    const text = {
      idle: 'Not connected',
      connecting: 'Connecting…',
      live: 'Live',
      reconnecting: `Reconnecting in ${detail ?? 0} s`,
      'signed-out': 'Signed out',
    }[status] || status;
    pill.textContent = text;
    pill.title = note || '';
    $('retry-button').hidden = status !== 'reconnecting';
    if (note) console.warn(note);
  }

  renderUser() {
    const node = $('user');
    if (!this.user) {
      node.textContent = '';
      return;
    }
    let text = this.user;
    node.classList.remove('expiring');
    if (this.expiresAt) {
      const left = this.expiresAt - Date.now();
      const at = new Date(this.expiresAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
      if (left < kExpiryWarningMs) {
        node.classList.add('expiring');
        text += ` · token expires in ${Math.max(0, Math.ceil(left / 60000))} min: give a fresh one with Token…`;
      } else {
        text += ` · token valid until ${at}`;
      }
    }
    node.textContent = text;
  }

  renderTabs() {
    const tabs = [...this.views.values()].map((view) => {
      const selected = view.id === this.activeId;
      const t = { ...view.info, ...(this.list.get(view.id) || {}) };
      return el('div', { class: 'tab', role: 'presentation', 'aria-selected': String(selected), dataset: { id: view.id } },
        el('button', {
          type: 'button', class: 'tab-label', role: 'tab', 'aria-selected': String(selected),
          'aria-controls': view.pane.id, tabindex: selected ? 0 : -1, onclick: () => this.activate(view.id),
        }, view.label),
        view.readOnly ? el('span', { class: 'badge readonly', title: 'shared with you read-only' }, 'read-only') : null,
        viewersBadge(view.viewers),
        view.exit || t.state === 'exited' ? el('span', { class: 'badge exited' }, exitText({ ...t, state: 'exited', ...(view.exit || {}) })) : null,
        el('button', {
          type: 'button', class: 'tab-close', title: 'Detach (the terminal keeps running)',
          'aria-label': `Detach ${view.label}`, onclick: () => this.detach(view.id),
        }, '×'));
    });
    replaceChildren($('tabs'), tabs);
    $('no-tab').hidden = this.views.size > 0;
  }
}

// The users following a terminal (presence), as a badge of the tab: each name, ✎ for those who may
// type (its owner and users it is shared with for writing).
function viewersBadge(viewers) {
  if (!Array.isArray(viewers) || viewers.length === 0) return null;
  const describe = (v) => `${v.user} (${v.role === 'read' ? 'read-only' : v.role === 'owner' ? 'owner, can type' : 'can type'}` +
    `${v.connections > 1 ? `, ${v.connections} connections` : ''})`;
  return el('span', { class: 'badge viewers', title: `Viewing: ${viewers.map(describe).join(', ')}` },
    viewers.map((v) => el('span', {
      class: `viewer ${v.role === 'read' ? 'reader' : 'writer'}`, dataset: { user: v.user, role: v.role },
    }, v.role === 'read' ? v.user : `${v.user} ✎`)));
}

const app = new App();

// Hooks for the browser tests (and for curious humans in the console).
window.ptyhub = {
  status: () => (app.client ? app.client.status : 'idle'),
  statusHistory: () => [...statusHistory],
  user: () => app.user,
  activeId: () => app.activeId,
  tabs: () => [...app.views.keys()],
  terminals: () => [...app.list.terminals.values()],
  bufferText: (id) => {
    const view = app.views.get(id || app.activeId);
    return view ? view.bufferText() : null;
  },
  view: (id) => {
    const view = app.views.get(id || app.activeId);
    if (!view) return null;
    return {
      id: view.id, next: view.next, cols: view.term.cols, rows: view.term.rows, readOnly: view.readOnly,
      serverCols: view.info.cols, serverRows: view.info.rows, subscribed: view.subscribed,
      writable: view.writable, paused: view.paused, exit: view.exit, stats: { ...view.stats },
      snapshot: view.attachment.snapshot, viewers: view.viewers,
    };
  },
  // The visible lines of a terminal's screen (xterm's active buffer, from its viewport's top).
  screenLines: (id) => {
    const view = app.views.get(id || app.activeId);
    if (!view) return null;
    const buffer = view.term.buffer.active;
    const lines = [];
    for (let i = 0; i < view.term.rows; i++) {
      const line = buffer.getLine(buffer.viewportY + i);
      lines.push(line ? line.translateToString(true) : '');
    }
    return { lines, cursorX: buffer.cursorX, cursorY: buffer.cursorY, type: buffer.type, cols: view.term.cols, rows: view.term.rows };
  },
  // The names shown on a terminal's tab as its viewers, with their roles.
  tabViewers: (id) => [...document.querySelectorAll(`.tab[data-id="${id || app.activeId}"] .viewer`)]
    .map((node) => ({ user: node.dataset.user, role: node.dataset.role, text: node.textContent })),
  gitOperations: () => [...app.git.ops.values()].map((op) => ({ ...op, phases: Object.fromEntries(op.phases) })),
  debugDropConnection: () => app.client && app.client.drop(),
  setFlowControl: (high, low) => Object.assign(flowControl, { high, low }),
};

app.start();
