// One terminal's output stream, `shell:terminal:<id>` (docs/protocol.md §4 `subscribe`, §6), kept
// whole across connections.
//
// - Offsets: `next` is the offset of the next byte expected. Every chunk covers raw bytes
//   [offset, next) and starts where the previous one ended (§6). After a reconnection the attachment
//   subscribes again with `since: next` (§4, §7), so each byte is delivered exactly once; a chunk that
//   would repeat bytes is dropped (counted in `stats.overlaps`), one that skips bytes is counted in
//   `stats.holes` (neither happens with a daemon that keeps §6).
// - `shell.gap {from, to}` (§4: `since` older than the ring; §6: a paused or slow reader whose point
//   left the ring) is emitted as 'gap', and `next` moves to `to`.
// - Replay: chunks with `offset < replay.to` of the latest `subscribed` reply are history (§4) and
//   carry `replayed: true`, so an emulator can avoid answering queries in them.
// - Snapshot (§6, Snapshots): the first subscription asks for the screen (`subscribe {snapshot: true}`) unless `since`
//   was given or `snapshot: false`: the daemon answers `shell.snapshot {offset, cols, rows, data, exact,
//   reason?}`, delivered as the first item ({type: 'snapshot'}), and live output follows from exactly
//   `offset`: nothing of the history is replayed. Resubscriptions after a drop use `since: next` (bytes,
//   exact), never a snapshot, unless the drop came before the snapshot did. A daemon with snapshots
//   off (`unavailable`, field `data.snapshot`) is asked again without one: the retained output is replayed.
// - Presence (§6): `viewers` is the list of the `subscribed` reply, replaced by each `shell.viewers` event
//   (emitted as 'viewers'); null while the daemon sends none.
// - Flow control: `pause()`/`resume()` send `shell.pause`/`shell.resume` (§4, §6); holds are counted by
//   reason (the caller's own, the async iterator's queue, an xterm binding), so the terminal is resumed
//   only when none is left. A new subscription starts unpaused (§4), so a held attachment pauses again
//   after each resubscription.
import { Emitter } from './emitter.js';
import { RequestError } from './errors.js';
import { ChunkQueue } from './stream.js';

const kChannelPrefix = 'shell:terminal:';

// Standard base64 → bytes (§6 `encoding: "base64"`).
export function decodeBase64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

// Bytes → standard base64 with padding (§4 `shell.input {encoding: "base64"}`).
export function encodeBase64(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

// The bytes an item weighs in the backlog and the iteration's queue.
function itemSize(item) {
  if (item.type === 'output') return item.next - item.offset;
  if (item.type === 'snapshot') return item.data.length;
  return 0;
}

export class Attachment extends Emitter {
  // Not subscribed yet: PtyhubClient.attach/createTerminal subscribe or adopt it.
  // client: the PtyhubClient; options: {since?, snapshot?, encoding?, highWaterMark?, lowWaterMark?}
  constructor(client, terminalId, options = {}) {
    super();
    if (options.snapshot === true && options.since != null) {
      throw new Error('ptyhub: snapshot and since exclude each other (since resumes a stream)');
    }
    this.client = client;
    this.terminalId = terminalId;
    this.channel = `${kChannelPrefix}${terminalId}`;
    this.encoding = options.encoding || 'utf8';
    this.since = options.since ?? null;
    this.next = options.since ?? 0;
    this.highWaterMark = options.highWaterMark ?? 256 * 1024;
    this.lowWaterMark = options.lowWaterMark ?? 64 * 1024;
    /** @type {object|null} the terminal object (§5), updated by resizes and the exit */
    this.terminal = null;
    this.replayTo = 0;
    // A snapshot is asked for by the first subscription unless `since` is given (or snapshot: false).
    this.wantSnapshot = options.snapshot ?? (options.since == null);
    this.snapshotPending = false; // asked for, not received yet
    /** @type {object|null} the latest snapshot's {offset, cols, rows, exact, reason} (without its data) */
    this.snapshot = null;
    /** @type {Array<{user: string, role: string, since: string, connections: number}>|null} who follows the terminal */
    this.viewers = null;
    this.subscribed = false;
    this.started = false;
    this.closed = false;
    /** @type {object|null} the `shell.exit` data once the terminal ended */
    this.exit = null;
    this.holds = new Set();
    this.queue = null;
    this.backlog = [];
    this.backlogBytes = 0;
    this.flowing = false;
    this.flowScheduled = false;
    this.exitDelivered = false;
    this.stats = { snapshots: 0, chunks: 0, bytes: 0, replayed: 0, holes: 0, overlaps: 0, gaps: 0, pauses: 0, resumes: 0, resumptions: 0 };
    /** @type {Promise<object>} the first `subscribed` data (rejects if the terminal is not found) */
    this.ready = new Promise((resolve, reject) => {
      this.settleReady = { resolve, reject };
    });
    this.ready.catch(() => {});
  }

  // Whether the daemon was asked to hold this terminal's output back (§6).
  get paused() {
    return this.holds.size > 0;
  }

  // Subscribes (again): the first time with a snapshot, or from `since` (or the oldest retained byte),
  // then from `next`.
  async subscribe() {
    const data = { channel: this.channel };
    if (this.encoding !== 'utf8') data.encoding = this.encoding;
    // A drop between the reply and its snapshot: the snapshot is asked for again.
    const snapshot = this.wantSnapshot && (!this.started || this.snapshotPending);
    const resuming = this.started && !snapshot;
    if (snapshot) data.snapshot = true;
    else if (resuming || this.since !== null) data.since = this.next;
    try {
      // The replay range is applied as the reply is read, before the snapshot or the replayed chunks
      // that follow it.
      return await this.client.request('subscribe', data, {
        onReply: (reply) => {
          if (this.closed) return reply.data;
          const { terminal, replay, viewers } = reply.data;
          if (!resuming && this.since === null && replay.from > this.next) this.next = replay.from;
          this.snapshotPending = snapshot;
          if (Array.isArray(viewers)) this.setViewers(viewers);
          this.onSubscribed(terminal, replay, resuming);
          return reply.data;
        },
      });
    } catch (err) {
      if (err instanceof RequestError && err.code === 'not_found') this.close(err);
      if (snapshot && err instanceof RequestError && err.code === 'unavailable' && err.field === 'data.snapshot') {
        // snapshots = off on the daemon: the retained output is replayed instead.
        this.wantSnapshot = false;
        this.snapshotPending = false;
        return this.subscribe();
      }
      throw err;
    }
  }

  // Takes over the subscription `shell.create` / `git.operation.start` made (from offset 0, §4).
  adopt(terminal) {
    this.onSubscribed(terminal, { from: 0, to: 0 }, false);
  }

  // A subscription is in place: its replay range, and a hold re-sent (a new subscription starts unpaused).
  onSubscribed(terminal, replay, resuming) {
    this.terminal = terminal;
    this.replayTo = replay.to;
    this.subscribed = true;
    this.started = true;
    if (resuming) this.stats.resumptions++;
    this.settleReady.resolve({ terminal, replay, viewers: this.viewers });
    if (this.holds.size > 0) this.sendFlow('shell.pause');
    this.emit('subscribed', { terminal, replay, resumed: resuming });
  }

  // After a reconnection (the client's 'live'): subscribe again from `next`, unless the terminal ended.
  resubscribe() {
    if (this.closed || this.exit || !this.started) return Promise.resolve();
    this.subscribed = false;
    return this.subscribe().catch((err) => this.reportError(err));
  }

  // Emits 'error', except for a request cut short by a lost connection (the next 'live' subscribes again).
  reportError(err) {
    if (err.code !== 'disconnected') this.emit('error', err);
  }

  // One message of this terminal's channel.
  handle(msg) {
    if (this.closed) return;
    const d = msg.data || {};
    switch (msg.type) {
      case 'shell.snapshot':
        this.onSnapshot(d);
        break;
      case 'shell.output':
        this.onOutput(d);
        break;
      case 'shell.viewers':
        if (Array.isArray(d.viewers)) this.setViewers(d.viewers);
        break;
      case 'shell.gap':
        this.stats.gaps++;
        if (d.to > this.next) this.next = d.to;
        this.deliver({ type: 'gap', terminalId: this.terminalId, from: d.from, to: d.to }, 0);
        break;
      case 'shell.resized':
        if (this.terminal) this.terminal = { ...this.terminal, cols: d.cols, rows: d.rows };
        this.emit('resized', { cols: d.cols, rows: d.rows });
        break;
      case 'shell.exit':
        if (this.exit) break;
        this.exit = d;
        if (this.terminal) this.terminal = { ...this.terminal, state: 'exited', exitCode: d.exitCode, signal: d.signal };
        this.deliver({ type: 'exit', terminalId: this.terminalId, ...d }, 0);
        break;
      case 'unsubscribed':
        this.subscribed = false;
        this.emit('unsubscribed', { reason: d.reason });
        this.close();
        break;
      default:
        break;
    }
    this.emit('message', msg);
  }

  // The list of viewers changed (or was given again by a `subscribed` reply).
  setViewers(viewers) {
    this.viewers = viewers;
    this.emit('viewers', viewers);
  }

  // Whether `next` is a position in the stream (after an output chunk or a snapshot), not a guess.
  get positioned() {
    return this.stats.chunks > 0 || this.stats.snapshots > 0;
  }

  // `shell.snapshot` (§6 Snapshots): the screen as bytes; live output follows from exactly its offset.
  onSnapshot(d) {
    this.snapshotPending = false;
    const data = d.encoding === 'base64' ? decodeBase64(d.data) : d.data;
    this.stats.snapshots++;
    this.next = d.offset;
    this.snapshot = { offset: d.offset, cols: d.cols, rows: d.rows, exact: d.exact !== false };
    if (d.reason) this.snapshot.reason = d.reason;
    const item = { type: 'snapshot', terminalId: this.terminalId, ...this.snapshot, next: d.offset, data };
    this.deliver(item, data.length);
  }

  // One `shell.output` (§6): checked against `next`, decoded, delivered.
  onOutput(d) {
    this.snapshotPending = false; // output before any snapshot: none is coming
    if (d.next <= this.next && this.positioned) {
      this.stats.overlaps++;
      return;
    }
    let data = d.encoding === 'base64' ? decodeBase64(d.data) : d.data;
    let offset = d.offset;
    if (offset > this.next && this.positioned) this.stats.holes++;
    if (offset < this.next) {
      this.stats.overlaps++;
      // Only raw bytes can be cut at an offset; a text chunk is passed whole.
      if (data instanceof Uint8Array) {
        data = data.subarray(this.next - offset);
        offset = this.next;
      }
    }
    this.stats.chunks++;
    this.stats.bytes += d.next - offset;
    this.next = d.next;
    const replayed = offset < this.replayTo;
    if (replayed) this.stats.replayed++;
    this.deliver({ type: 'output', terminalId: this.terminalId, offset, next: d.next, data, replayed }, d.next - offset);
  }

  // Hands an item ('snapshot', 'output', 'gap', 'exit') to the consumers in stream order. Until the first consumer
  // shows up (an 'output' listener or the iteration), items wait in a backlog (which pauses the terminal
  // past `highWaterMark`, like an iterator's queue): in Node a whole batch of messages can be handled
  // before the code that asked for the attachment runs again, and none of it may be missed.
  deliver(item, size) {
    if (!this.flowing) {
      this.backlog.push(item);
      this.backlogBytes += size;
      if (this.backlogBytes > this.highWaterMark) this.pause('backlog');
      return;
    }
    this.dispatch(item, size);
  }

  // Emits an item to the listeners and queues it for the iteration; the exit ends the iteration.
  dispatch(item, size) {
    if (item.type === 'exit') {
      const { type, terminalId, ...exit } = item;
      this.exitDelivered = true;
      this.emit('exit', exit);
      if (this.queue) this.queue.end();
      return;
    }
    this.emit(item.type, item);
    if (this.queue) this.queue.push(item, size);
  }

  // A consumer arrived: the backlog is delivered in a microtask, so every listener added in the same
  // turn gets it, in order, before any later item.
  startFlowing() {
    if (this.flowScheduled) return;
    this.flowScheduled = true;
    queueMicrotask(() => {
      for (let i = 0; i < this.backlog.length; i++) {
        const item = this.backlog[i];
        this.dispatch(item, itemSize(item));
      }
      this.backlog = [];
      this.backlogBytes = 0;
      this.flowing = true;
      this.resumeHold('backlog');
    });
  }

  // Adds a listener; the first 'output' listener starts the delivery (see deliver()).
  on(event, listener) {
    const off = super.on(event, listener);
    if (event === 'output') this.startFlowing();
    return off;
  }

  // Asks the daemon to stop sending output (§6); `reason` names the hold (default 'user'). Resolves
  // once the daemon acknowledged it (at once when another hold already paused the terminal).
  pause(reason = 'user') {
    if (this.holds.has(reason)) return Promise.resolve();
    this.holds.add(reason);
    if (this.holds.size > 1) return Promise.resolve();
    this.stats.pauses++;
    this.emit('pause');
    return this.sendFlow('shell.pause');
  }

  // Releases the caller's own pause (see pause()).
  resume() {
    return this.resumeHold('user');
  }

  // Releases the hold `reason`; when none is left, the output continues where it stopped (§6).
  resumeHold(reason) {
    if (!this.holds.delete(reason) || this.holds.size > 0) return Promise.resolve();
    this.stats.resumes++;
    this.emit('resume');
    return this.sendFlow('shell.resume');
  }

  // §4: pause/resume need a subscription; while disconnected the hold is re-sent after resubscribing.
  sendFlow(type) {
    if (!this.subscribed || !this.client.live) return Promise.resolve();
    return this.client.request(type, { terminalId: this.terminalId }).then(() => {}, (err) => {
      if (err.code !== 'disconnected') this.emit('error', err);
    });
  }

  // Writes `data` to the terminal (§4 `shell.input`); `encoding: 'base64'` for raw bytes.
  input(data, { encoding } = {}) {
    return this.client.input(this.terminalId, data, { encoding });
  }

  // Sets the terminal's size (§4 `shell.resize`, last writer wins).
  resize(cols, rows) {
    return this.client.resize(this.terminalId, cols, rows);
  }

  // Signals the terminal's session (§4 `shell.kill`; default SIGHUP).
  kill(signal) {
    return this.client.kill(this.terminalId, signal);
  }

  // Shares the terminal with `user` (§4 `shell.share`; mode 'read', 'write' or 'none').
  share(user, mode) {
    return this.client.share(this.terminalId, user, mode);
  }

  // Stops following the terminal (it keeps running): `unsubscribe`, and the iteration ends.
  async detach() {
    const wasSubscribed = this.subscribed && this.client.live;
    this.close();
    if (wasSubscribed) await this.client.request('unsubscribe', { channel: this.channel }).catch(() => {});
  }

  // Ends the attachment locally (no more events, the iteration ends with `error` if given).
  close(error = null) {
    if (this.closed) return;
    this.closed = true;
    this.subscribed = false;
    this.client.forget(this);
    this.settleReady.reject(error || new Error('ptyhub: the attachment was closed'));
    if (this.queue) this.queue.end(error);
    this.emit('close', error);
  }

  // `for await (const chunk of attachment)`: the snapshot (first, when one was asked for), then output
  // and gap items in stream order, until the terminal
  // exits or the attachment is detached. A consumer that falls `highWaterMark` bytes behind pauses the
  // terminal, and resumes it below `lowWaterMark`. The first consumer (this or an 'output' listener)
  // gets the backlog; one that comes after another started gets the items from then on.
  [Symbol.asyncIterator]() {
    if (this.queue) throw new Error('ptyhub: an attachment is iterated once');
    this.queue = new ChunkQueue({
      high: this.highWaterMark,
      low: this.lowWaterMark,
      onHigh: () => this.pause('iterator'),
      onLow: () => this.resumeHold('iterator'),
      onClose: () => {},
    });
    if (this.closed || this.exitDelivered) this.queue.end();
    this.startFlowing();
    return this.queue;
  }
}
