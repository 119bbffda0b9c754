// One git operation (docs/protocol.md §4 `git.operation.start`): git runs as a terminal of kind `git`
// whose channel the requester is subscribed to from offset 0. Its output comes through `attachment`
// (resumed after a reconnection like any terminal's); its progress and completion are this object's
// events. After a live upgrade the operation's own events stop (§7: not carried across yet), but its
// terminal's output and exit still arrive.
import { Emitter } from './emitter.js';

export class GitOperation extends Emitter {
  // Made by PtyhubClient.startGit as the reply is read.
  // started: the `git.operation.started` data; attachment: the Attachment of its terminal
  constructor(client, started, attachment) {
    super();
    this.client = client;
    this.operationId = started.operationId;
    this.terminalId = started.terminalId;
    this.operation = started.operation;
    this.repo = started.repo;
    this.started = started;
    this.attachment = attachment;
    /** @type {Map<string, {current:number,total:number|null,percent:number|null}>} phase → latest progress */
    this.phases = new Map();
    /** @type {object|null} the `git.operation.completed` data */
    this.completed = null;
    this.done = new Promise((resolve) => {
      this.settle = resolve;
    });
    attachment.on('message', (msg) => this.handle(msg));
  }

  // 'output', 'gap' and 'exit' are the attachment's own events; the rest are this operation's.
  on(event, listener) {
    if (event === 'output' || event === 'gap' || event === 'exit') return this.attachment.on(event, listener);
    return super.on(event, listener);
  }

  // A message of the operation's channel (or of `shell:terminals`, for the completion).
  handle(msg) {
    const d = msg.data || {};
    if (d.operationId !== this.operationId) return;
    if (msg.type === 'git.operation.progress') {
      const progress = { phase: d.phase, current: d.current, total: d.total, percent: d.percent };
      this.phases.set(d.phase, progress);
      this.emit('progress', progress);
    } else if (msg.type === 'git.operation.completed' && !this.completed) {
      this.completed = d;
      this.emit('completed', d);
      this.settle(d);
    }
  }

  // Asks the daemon to cancel (§4 `git.operation.cancel`): SIGTERM, SIGKILL after `kill_grace`; it then
  // completes as `cancelled`.
  cancel() {
    return this.client.request('git.operation.cancel', { operationId: this.operationId });
  }
}
