// The git monitor: a form that starts `git.operation.start` through @ptyhub/client (a GitOperation, whose
// output is resumed after a reconnection like any terminal's), progress bars per phase from
// `git.operation.progress`, and the list of recent operations (status, duration, exit code); a click on
// one shows its output. Operations started elsewhere appear through `shell:terminals`.
import { el, formatDuration, replaceChildren } from './dom.js';

const kMaxOperations = 20;
const kMaxOutput = 256 * 1024;

// Terminal output → plain text: escape sequences removed, carriage returns rewrite the line.
export function plainText(raw) {
  const noEscapes = raw.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[@-Z\\-_]/g, '');
  return noEscapes
    .split('\n')
    .map((line) => {
      const parts = line.replace(/\r+$/, '').split('\r');
      return parts[parts.length - 1];
    })
    .join('\n');
}

export class GitMonitor {
  // app: {client}; the section's form, error line, list, empty note and detail
  constructor(app, { form, error, list, empty, detail }) {
    this.app = app;
    this.form = form;
    this.error = error;
    this.list = list;
    this.empty = empty;
    this.detail = detail;
    this.ops = new Map(); // operationId → operation
    this.byTerminal = new Map(); // terminalId → operationId
    this.selected = null;
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.start();
    });
    form.elements.operation.addEventListener('change', () => this.syncForm());
    this.syncForm();
    setInterval(() => this.tick(), 1000);
  }

  syncForm() {
    const clone = this.form.elements.operation.value === 'clone';
    this.form.elements.url.disabled = !clone;
    this.form.elements.url.required = clone;
  }

  async start() {
    const f = this.form.elements;
    const data = { operation: f.operation.value, repo: f.repo.value.trim() };
    if (data.operation === 'clone') data.url = f.url.value.trim();
    this.error.textContent = '';
    f.start.disabled = true;
    try {
      const operation = await this.app.client.startGit(data);
      const op = this.add(operation.started);
      this.follow(op, operation);
      this.selected = op.operationId;
      this.render();
    } catch (err) {
      this.error.textContent = `${err.code}: ${err.message}${err.field ? ` (${err.field})` : ''}`;
    } finally {
      f.start.disabled = false;
    }
  }

  add(started) {
    let op = this.ops.get(started.operationId);
    if (!op) {
      op = {
        ...started,
        status: 'running',
        exitCode: null,
        durationMs: null,
        phases: new Map(),
        output: '',
        subscribed: false,
        attachment: null,
      };
      this.ops.set(op.operationId, op);
      this.byTerminal.set(op.terminalId, op.operationId);
      this.trim();
    }
    return op;
  }

  trim() {
    const ids = [...this.ops.keys()];
    for (const id of ids.slice(0, Math.max(0, ids.length - kMaxOperations))) {
      if (this.ops.get(id).status === 'running') continue;
      this.byTerminal.delete(this.ops.get(id).terminalId);
      this.ops.delete(id);
    }
  }

  // Follows an operation we started: its progress, output and completion.
  follow(op, operation) {
    op.subscribed = true;
    op.attachment = operation.attachment;
    operation.on('progress', (p) => {
      op.phases.set(p.phase, { current: p.current, total: p.total, percent: p.percent });
      this.render();
    });
    operation.on('output', (chunk) => {
      op.output = (op.output + chunk.data).slice(-kMaxOutput);
      if (this.selected === op.operationId) this.renderDetail();
    });
    operation.on('completed', (d) => this.complete(d));
  }

  // The attachment and the output so far of an operation we follow whose terminal is `terminalId`.
  followed(terminalId) {
    const op = this.ops.get(this.byTerminal.get(terminalId));
    return op && op.attachment && !op.attachment.closed ? { attachment: op.attachment, output: op.output } : null;
  }

  // A message of `shell:terminals`.
  handleLifecycle(msg) {
    if (msg.type === 'git.operation.started') {
      this.add(msg.data);
      this.render();
    } else if (msg.type === 'git.operation.completed') {
      this.complete(msg.data);
    }
  }

  complete(d) {
    const op = this.ops.get(d.operationId) || this.add(d);
    op.status = d.status;
    op.exitCode = d.exitCode;
    op.durationMs = d.durationMs;
    op.error = d.error ?? null;  // a failed operation: git's first error line
    this.render();
  }

  tick() {
    if ([...this.ops.values()].some((op) => op.status === 'running')) this.render();
  }

  render() {
    const ops = [...this.ops.values()].reverse();
    replaceChildren(this.list, ops.map((op) => this.item(op)));
    this.empty.hidden = ops.length > 0;
    this.renderDetail();
  }

  item(op) {
    const duration = op.durationMs ?? (op.startedAt ? Date.now() - Date.parse(op.startedAt) : null);
    const phases = [...op.phases.entries()].map(([phase, p]) =>
      el('div', { class: 'phase' },
        el('span', { class: 'phase-name' }, phase),
        // A phase that only counts has no bar once the operation is over.
        p.percent !== null
          ? el('progress', { max: 100, value: p.percent, 'aria-label': phase })
          : op.status === 'running' ? el('progress', { 'aria-label': phase }) : el('span'),
        el('span', { class: 'phase-value num' },
          p.percent === null ? `${p.current}` : `${p.percent} % (${p.current}/${p.total})`)));
    return el('li', { class: `op op-${op.status}`, dataset: { id: op.operationId } },
      el('button', {
        type: 'button', class: 'op-head', 'aria-pressed': String(this.selected === op.operationId),
        onclick: () => {
          this.selected = this.selected === op.operationId ? null : op.operationId;
          this.render();
        },
      },
        el('span', { class: 'op-title' }, `${op.operation} ${op.repo}`),
        el('span', { class: `status status-${op.status}` }, op.status),
        el('span', { class: 'num' }, formatDuration(duration)),
        op.exitCode !== null && op.exitCode !== undefined ? el('span', { class: 'num' }, `exit ${op.exitCode}`) : null),
      phases.length ? el('div', { class: 'phases' }, phases) : null,
      op.error ? el('div', { class: 'op-error', role: 'status' }, op.error) : null);
  }

  renderDetail() {
    const op = this.ops.get(this.selected);
    this.detail.hidden = !op;
    if (!op) return;
    replaceChildren(this.detail,
      el('h3', {}, `Output of ${op.operation} ${op.repo}`),
      el('pre', { tabindex: 0 }, op.subscribed ? plainText(op.output) || '(no output yet)'
        : '(started elsewhere: attach its terminal in the list to see the output)'));
  }
}
