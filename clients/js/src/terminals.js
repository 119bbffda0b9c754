// The live list of terminals the user may read: `shell:terminals` (docs/protocol.md §4 `subscribe`):
// a snapshot, then `shell.created`, `shell.exit`, `shell.removed` and the git operations' `started`
// and `completed` deltas, consistent with the snapshot (nothing lost or doubled between them). It
// subscribes again after each reconnection and emits a fresh 'snapshot'.
import { Emitter } from './emitter.js';

export const kTerminalsChannel = 'shell:terminals';

export class TerminalWatch extends Emitter {
  // Watches through `client`; PtyhubClient.watchTerminals() creates and subscribes it.
  constructor(client) {
    super();
    this.client = client;
    /** @type {Map<string, object>} terminal id → terminal object (§5) */
    this.terminals = new Map();
    this.closed = false;
  }

  // Subscribes (again) and replaces the list with the snapshot.
  async subscribe() {
    const reply = await this.client.request('subscribe', { channel: kTerminalsChannel });
    if (this.closed) return this.list();
    this.terminals = new Map(reply.data.terminals.map((t) => [t.id, t]));
    this.emit('snapshot', this.list());
    return this.list();
  }

  // The terminals, oldest first.
  list() {
    return [...this.terminals.values()].sort((a, b) => (a.createdAt < b.createdAt ? -1 : 1));
  }

  // One message of `shell:terminals`.
  handle(msg) {
    const d = msg.data || {};
    if (msg.type === 'shell.created') {
      this.terminals.set(d.terminal.id, d.terminal);
      this.emit('created', d.terminal);
    } else if (msg.type === 'shell.exit') {
      const t = this.terminals.get(d.terminalId);
      if (t) {
        this.terminals.set(d.terminalId, { ...t, state: 'exited', exitCode: d.exitCode, signal: d.signal,
          outputBytes: d.outputBytes, ...(d.reason ? { reason: d.reason } : {}) });
      }
      this.emit('exit', d);
    } else if (msg.type === 'shell.removed') {
      this.terminals.delete(d.terminalId);
      this.emit('removed', d);
    } else if (msg.type === 'git.operation.started') {
      this.emit('git.started', d);
    } else if (msg.type === 'git.operation.completed') {
      this.emit('git.completed', d);
    }
    this.emit('message', msg);
  }

  // Stops watching: `unsubscribe` from `shell:terminals`.
  async close() {
    this.closed = true;
    this.client.forgetWatch(this);
    if (this.client.live) await this.client.request('unsubscribe', { channel: kTerminalsChannel }).catch(() => {});
  }
}
