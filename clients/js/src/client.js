// PtyhubClient: the whole of `ptyhub.v1` for an application. It owns one Connection and routes what
// arrives on it: a terminal's channel to its Attachment, `shell:terminals` to the TerminalWatch
// instances, and everything to 'message' listeners. On every (re)connection it subscribes again the
// list watchers first, then each attachment from where its output stopped (docs/protocol.md §4, §7).
import { Attachment, encodeBase64 } from './attachment.js';
import { Connection } from './connection.js';
import { Emitter } from './emitter.js';
import { GitOperation } from './git.js';
import { TerminalWatch, kTerminalsChannel } from './terminals.js';

const kForwarded = ['status', 'auth', 'close', 'reconnecting', 'signedout', 'refresherror', 'token'];
const kTerminalPrefix = 'shell:terminal:';

export class PtyhubClient extends Emitter {
  // Creates the client and, unless `connect: false`, connects.
  // options: {url, token, refreshToken?, WebSocket?, backoffMs?, refreshMarginMs?, connect? (default true)}
  constructor(options) {
    super();
    this.connection = new Connection(options);
    /** @type {Map<string, Attachment>} terminal id → attachment */
    this.attachments = new Map();
    /** @type {Set<TerminalWatch>} */
    this.watches = new Set();
    for (const event of kForwarded) this.connection.on(event, (...args) => this.emit(event, ...args));
    this.connection.on('live', (authOk) => this.onLive(authOk));
    this.connection.on('message', (msg) => this.onMessage(msg));
    if (options.connect !== false) this.connect();
  }

  // 'idle' | 'connecting' | 'live' | 'reconnecting' | 'signed-out'
  get status() {
    return this.connection.status;
  }

  // Whether requests can be sent now.
  get live() {
    return this.connection.status === 'live';
  }

  // The latest `auth.ok` data: {user, scopes, expiresAt} (§2), or null before the first.
  get auth() {
    return this.connection.authOk;
  }

  // The token the next connection presents.
  get token() {
    return this.connection.token;
  }

  // The token of the next connections, e.g. after a sign-out (connect() then tries again).
  setToken(token) {
    this.connection.setToken(token);
  }

  // Opens the connection (done by the constructor unless `connect: false`); after a sign-out, tries again.
  connect() {
    this.connection.start();
  }

  // Closes for good; terminals keep running on the daemon (§5).
  close() {
    this.connection.stop();
  }

  // Resolves once the connection is live (at once if it is).
  ready() {
    if (this.live) return Promise.resolve(this.auth);
    return new Promise((resolve, reject) => {
      const offLive = this.connection.on('live', (authOk) => {
        offLive();
        offOut();
        resolve(authOk);
      });
      const offOut = this.connection.on('signedout', (reason) => {
        offLive();
        offOut();
        reject(new Error(`ptyhub: signed out: ${reason}`));
      });
    });
  }

  // Sends any request (§4); resolves with the reply message, rejects with a RequestError.
  // `options.onReply(msg)` runs synchronously as the reply is read (see Connection.request).
  request(type, data = {}, options = {}) {
    return this.connection.request(type, data, options);
  }

  // Presents a fresh token on the live connection (§2) and keeps it for the next connections.
  refresh(token) {
    return this.connection.refresh(token);
  }

  // Closes the socket as a network failure would (it comes back by itself, with backoff).
  drop() {
    this.connection.drop();
  }

  // Skips the wait of a scheduled reconnection.
  reconnectNow() {
    this.connection.reconnectNow();
  }

  // Every (re)connection: the watches, then the attachments, subscribe again.
  onLive(authOk) {
    for (const watch of this.watches) watch.subscribe().catch((err) => watch.emit('error', err));
    for (const attachment of this.attachments.values()) {
      if (attachment.started) attachment.resubscribe();
      else attachment.subscribe().catch((err) => attachment.reportError(err));
    }
    this.emit('live', authOk);
  }

  // Routes a message that is not a reply by its channel.
  onMessage(msg) {
    const channel = msg.channel || (msg.data && msg.data.channel);
    if (channel === kTerminalsChannel) {
      for (const watch of this.watches) watch.handle(msg);
    } else if (typeof channel === 'string' && channel.startsWith(kTerminalPrefix)) {
      const attachment = this.attachments.get(channel.slice(kTerminalPrefix.length));
      if (attachment) attachment.handle(msg);
    }
    this.emit('message', msg);
  }

  // ---- terminals ----

  // Creates a terminal (§4 `shell.create`) and resolves with its Attachment, following its output from
  // byte 0. `encoding: 'base64'` creates it unsubscribed and attaches from 0 in that encoding.
  async createTerminal(options = {}) {
    const { encoding, highWaterMark, lowWaterMark, ...create } = options;
    const attachOptions = { encoding, highWaterMark, lowWaterMark };
    if (encoding && encoding !== 'utf8') {
      const reply = await this.request('shell.create', { ...create, subscribe: false });
      return this.attach(reply.data.terminal.id, { ...attachOptions, since: 0 });
    }
    // The attachment exists as the reply is read: the terminal's first output is at the earliest the
    // next message (§4 `subscribe: true`).
    return this.request('shell.create', { ...create, subscribe: true }, {
      onReply: (reply) => {
        const attachment = this.track(new Attachment(this, reply.data.terminal.id, attachOptions));
        attachment.adopt(reply.data.terminal);
        return attachment;
      },
    });
  }

  // Follows an existing terminal and keeps following it across reconnections: by default from a
  // snapshot of its screen (`subscribe {snapshot: true}`, §4), then live output from the snapshot's
  // offset; with `since` (or `snapshot: false`), from that offset (default: the oldest retained byte)
  // with the history replayed. One attachment per terminal and client.
  attach(terminalId, options = {}) {
    const attachment = this.track(new Attachment(this, terminalId, options));
    if (this.live) attachment.subscribe().catch((err) => attachment.reportError(err));
    return attachment;
  }

  // Registers an attachment (one per terminal).
  track(attachment) {
    if (this.attachments.has(attachment.terminalId)) {
      throw new Error(`ptyhub: terminal ${attachment.terminalId} is already attached`);
    }
    this.attachments.set(attachment.terminalId, attachment);
    return attachment;
  }

  // Called by an attachment that closed.
  forget(attachment) {
    if (this.attachments.get(attachment.terminalId) === attachment) this.attachments.delete(attachment.terminalId);
  }

  // The terminals the user may read (§4 `shell.list`; `state`: 'running' or 'exited').
  async list(options = {}) {
    const reply = await this.request('shell.list', options.state ? { state: options.state } : {});
    return reply.data.terminals;
  }

  // The live list (`shell:terminals`): a TerminalWatch kept subscribed across reconnections.
  watchTerminals() {
    const watch = new TerminalWatch(this);
    this.watches.add(watch);
    watch.ready = this.live ? watch.subscribe() : Promise.resolve([]);
    watch.ready.catch((err) => watch.emit('error', err));
    return watch;
  }

  // Called by a watch that closed.
  forgetWatch(watch) {
    this.watches.delete(watch);
  }

  // §4 `shell.input`: `data` as text, or bytes (a Uint8Array, or base64 text with `encoding: 'base64'`).
  input(terminalId, data, { encoding } = {}) {
    const msg = { terminalId, data };
    if (data instanceof Uint8Array) {
      msg.data = encodeBase64(data);
      msg.encoding = 'base64';
    } else if (encoding) msg.encoding = encoding;
    return this.request('shell.input', msg);
  }

  // §4 `shell.resize` (1..1000 each).
  resize(terminalId, cols, rows) {
    return this.request('shell.resize', { terminalId, cols, rows });
  }

  // §4 `shell.kill`; `signal` is SIGHUP (default), SIGINT, SIGTERM or SIGKILL.
  kill(terminalId, signal) {
    return this.request('shell.kill', signal ? { terminalId, signal } : { terminalId });
  }

  // §4 `shell.share`: `mode` is 'read', 'write' or 'none' (revoke).
  share(terminalId, user, mode) {
    return this.request('shell.share', { terminalId, user, mode });
  }

  // §4 `shell.dismiss`: removes an exited terminal from the list.
  dismiss(terminalId) {
    return this.request('shell.dismiss', { terminalId });
  }

  // ---- git ----

  // Starts a git operation (§4 `git.operation.start`: {operation, repo, args?, url?}) and resolves with
  // its GitOperation, whose output, progress and completion follow.
  async startGit(options) {
    const { highWaterMark, lowWaterMark, ...start } = options;
    return this.request('git.operation.start', start, {
      onReply: (reply) => {
        const attachment = this.track(new Attachment(this, reply.data.terminalId, { highWaterMark, lowWaterMark }));
        const operation = new GitOperation(this, reply.data, attachment);
        attachment.adopt({ id: reply.data.terminalId, kind: 'git' });
        return operation;
      },
    });
  }

  // §4 `git.operation.cancel` by id (for operations started elsewhere).
  cancelGit(operationId) {
    return this.request('git.operation.cancel', { operationId });
  }
}
