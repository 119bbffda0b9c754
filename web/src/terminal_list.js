// The live list of terminals the user may read: the snapshot of `shell:terminals`, then its deltas
// (shell.created, shell.exit, shell.removed), with buttons to attach, detach and kill.
import { el, exitText, replaceChildren, terminalLabel } from './dom.js';

export class TerminalList {
  // app: {isOpen(id), attach(id), detach(id), kill(id), canWrite(terminal)}
  constructor(app, tbody, empty) {
    this.app = app;
    this.tbody = tbody;
    this.empty = empty;
    this.terminals = new Map();
  }

  reset(terminals) {
    this.terminals = new Map(terminals.map((t) => [t.id, t]));
    this.render();
  }

  // A message of `shell:terminals`.
  handle(msg) {
    const d = msg.data || {};
    if (msg.type === 'shell.created') this.terminals.set(d.terminal.id, d.terminal);
    else if (msg.type === 'shell.exit') this.update(d.terminalId, {
      state: 'exited', exitCode: d.exitCode, signal: d.signal, outputBytes: d.outputBytes,
    });
    else if (msg.type === 'shell.removed') this.terminals.delete(d.terminalId);
    else return;
    this.render();
  }

  update(id, fields) {
    const t = this.terminals.get(id);
    if (t) this.terminals.set(id, { ...t, ...fields });
  }

  get(id) {
    return this.terminals.get(id);
  }

  render() {
    const rows = [...this.terminals.values()]
      .sort((a, b) => (a.createdAt < b.createdAt ? -1 : 1))
      .map((t) => this.row(t));
    replaceChildren(this.tbody, rows);
    this.empty.hidden = rows.length > 0;
  }

  row(t) {
    const open = this.app.isOpen(t.id);
    const running = t.state === 'running';
    const state = running ? 'running' : exitText(t);
    return el('tr', { dataset: { id: t.id }, class: running ? '' : 'exited' },
      el('td', {},
        el('span', { class: 'term-name', title: t.id }, terminalLabel(t)),
        t.kind !== 'shell' ? el('span', { class: 'badge' }, t.kind) : null),
      el('td', {}, t.owner),
      el('td', { class: `state state-${running ? 'running' : 'exited'}` }, state),
      el('td', { class: 'num' }, `${t.cols}×${t.rows}`),
      el('td', { class: 'actions' },
        el('button', { type: 'button', class: 'attach', onclick: () => this.app.attach(t.id),
          'aria-label': `${open ? 'Show' : 'Attach'} ${terminalLabel(t)}` }, open ? 'Show' : 'Attach'),
        open ? el('button', { type: 'button', class: 'detach', onclick: () => this.app.detach(t.id) }, 'Detach') : null,
        running && this.app.canWrite(t)
          ? el('button', { type: 'button', class: 'kill danger', onclick: () => this.app.kill(t.id) }, 'Kill')
          : null));
  }
}
