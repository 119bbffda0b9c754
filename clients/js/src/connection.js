// One WebSocket to ptyhubd (subprotocol `ptyhub.v1`) that comes back by itself: it authenticates with
// a first `auth` message (docs/protocol.md §2, way 3: works on plain and TLS listeners and from
// browsers), matches replies to requests by `id` (§3), reconnects at once after a live upgrade's close
// 1012 (§7, docs/upgrade.md) and with a growing delay after any other loss, and renews its token before
// it expires when given a `refreshToken` callback.
//
// Token renewal: §2 lets an `auth` message on an authenticated connection refresh it (same `sub`, new
// scopes and expiry), so a fresh token is sent on the open connection and is also the one the next
// (re)connection presents. Without a renewal the daemon closes the connection with 4401 at `exp` + its
// leeway.
//
// Status: 'idle' → 'connecting' → 'live' → ('reconnecting' → 'connecting' → 'live')*; 'signed-out'
// when the token is refused (4401 or an `unauthenticated` error, §2) and no fresh one can be had.
import { Emitter } from './emitter.js';
import { RequestError, disconnected } from './errors.js';
import { expiryOf } from './token.js';

export const kDefaultBackoffMs = [1000, 2000, 4000, 8000, 15000, 30000];
const kUnauthorizedClose = 4401; // §2: bad or expired token
const kServiceRestartClose = 1012; // §3, §7: live upgrade, the daemon is back at once
const kTickMs = 250;

export class Connection extends Emitter {
  // Checks the options; nothing is opened before start().
  // options: {url, token, refreshToken?, WebSocket?, backoffMs?, refreshMarginMs?}
  constructor(options) {
    super();
    if (!options || !options.url) throw new TypeError('ptyhub: `url` is required');
    this.url = options.url;
    this.token = options.token || '';
    this.refreshToken = options.refreshToken || null;
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    if (typeof this.WebSocket !== 'function') {
      throw new TypeError('ptyhub: no WebSocket here; pass the `WebSocket` option (e.g. from the `ws` package)');
    }
    this.backoffMs = options.backoffMs || kDefaultBackoffMs;
    this.refreshMarginMs = options.refreshMarginMs ?? null;
    this.socket = null;
    this.nextId = 1;
    this.pending = new Map();
    this.attempt = 0;
    this.tickTimer = null;
    this.refreshTimer = null;
    this.status = 'idle';
    this.stopped = true;
    this.expiresAt = null;
    this.authOk = null;
  }

  // Opens the connection (and keeps it open until stop()); after a sign-out, tries again.
  start() {
    if (!this.stopped && this.status !== 'signed-out') return;
    this.stopped = false;
    this.open();
  }

  // The token of the next connections (a live connection keeps its own: see refresh()).
  setToken(token) {
    this.token = token;
  }

  // Closes for good: no reconnection, pending requests rejected.
  stop() {
    this.stopped = true;
    clearInterval(this.tickTimer);
    clearTimeout(this.refreshTimer);
    const socket = this.socket;
    this.socket = null;
    this.failPending('connection stopped');
    if (socket) socket.close(1000, 'bye');
    this.setStatus('idle');
  }

  // Closes the socket as a network failure would; the connection comes back by itself (with backoff).
  drop() {
    if (this.socket) this.socket.close(4000, 'dropped by the client');
  }

  // Sends a request; resolves with the reply message, rejects with a RequestError (§3). `onReply(msg)`,
  // when given, runs synchronously as the reply is read, before any later message is handled, and its
  // result is what the promise resolves with: state that the next messages depend on (a subscription's
  // replay range, a new terminal's attachment) is in place before they arrive.
  request(type, data = {}, { onReply } = {}) {
    return new Promise((resolve, reject) => {
      if ((this.status !== 'live' && type !== 'auth') || !this.socket) {
        reject(disconnected());
        return;
      }
      const id = this.nextId++;
      const settle = onReply
        ? (msg) => {
          try {
            resolve(onReply(msg));
          } catch (err) {
            reject(err);
          }
        }
        : resolve;
      this.pending.set(id, { resolve: settle, reject });
      this.socket.send(JSON.stringify({ type, id, data }));
    });
  }

  // Presents `token` on the live connection (§2: same user, new scopes and expiry) and keeps it for
  // the next connection. Resolves with the `auth.ok` data.
  async refresh(token) {
    const reply = await this.request('auth', { token });
    this.token = token;
    this.onAuthOk(reply.data);
    this.emit('auth', reply.data);
    return reply.data;
  }

  // Skips the wait of a scheduled reconnection.
  reconnectNow() {
    if (this.status !== 'reconnecting') return;
    clearInterval(this.tickTimer);
    this.open();
  }

  // Records and announces the status ('reconnecting' is repeated with the seconds left).
  setStatus(status, detail) {
    if (this.status === status && status !== 'reconnecting') return;
    this.status = status;
    this.emit('status', status, detail);
  }

  // Opens one socket: auth first, then 'live'.
  async open() {
    this.setStatus('connecting');
    if (this.refreshToken && this.tokenIsStale()) await this.renewToken(false);
    if (this.stopped) return;
    let socket;
    try {
      socket = new this.WebSocket(this.url, ['ptyhub.v1']);
    } catch (err) {
      this.signOut(`cannot connect: ${err.message}`);
      return;
    }
    this.socket = socket;
    const presented = this.token;
    let refusal = null;
    socket.onopen = () => {
      const id = this.nextId++;
      this.pending.set(id, {
        resolve: (reply) => this.onLive(socket, reply.data),
        reject: (err) => {
          refusal = err.message;
        },
      });
      socket.send(JSON.stringify({ type: 'auth', id, data: { token: presented } }));
    };
    socket.onmessage = (event) => this.onFrame(event.data, (reason) => (refusal = reason));
    socket.onerror = () => {};
    socket.onclose = (event) => this.onClose(socket, event, refusal, presented);
  }

  // The first `auth` was accepted: live, and the backoff starts over.
  onLive(socket, authOk) {
    if (this.socket !== socket) return;
    this.attempt = 0;
    this.onAuthOk(authOk);
    this.setStatus('live');
    this.emit('live', authOk);
  }

  // Notes who we are and until when, and schedules the token's renewal.
  onAuthOk(authOk) {
    this.authOk = authOk;
    this.expiresAt = (authOk && authOk.expiresAt && Date.parse(authOk.expiresAt)) || expiryOf(this.token);
    this.scheduleRenewal();
  }

  // A socket closed: pending requests fail, then a refusal signs out and anything else reconnects.
  onClose(socket, event, refusal, presented) {
    if (this.socket !== socket) return;
    this.socket = null;
    clearTimeout(this.refreshTimer);
    this.failPending('connection closed');
    this.emit('close', { code: event.code, reason: event.reason || '' });
    if (this.stopped) return;
    if (event.code === kUnauthorizedClose || refusal) {
      this.onRefused(refusal || event.reason || 'the token was refused', presented);
      return;
    }
    // 1012: the daemon is replacing itself (a live upgrade, §7); it is back at once: no backoff.
    if (event.code === kServiceRestartClose) this.attempt = 0;
    this.scheduleReconnect(event.code === kServiceRestartClose ? 0 : undefined, event.code);
  }

  // A refused token: with a `refreshToken` callback a fresh token is tried once, else signed out.
  async onRefused(reason, presented) {
    if (this.refreshToken) {
      await this.renewToken(false);
      if (!this.stopped && this.token && this.token !== presented) {
        this.scheduleReconnect(undefined, kUnauthorizedClose);
        return;
      }
    }
    this.signOut(reason);
  }

  // No way back without a new token (setToken() + start()).
  signOut(reason) {
    this.setStatus('signed-out');
    this.emit('signedout', reason);
  }

  // Rejects every request still waiting for its reply with `disconnected`.
  failPending(message) {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const { reject } of pending) reject(disconnected(message));
  }

  // One text frame: a reply to a pending request, or an event for the listeners of 'message'.
  onFrame(text, noteRefusal) {
    let msg;
    try {
      msg = JSON.parse(typeof text === 'string' ? text : String(text));
    } catch {
      return;
    }
    if (msg.id !== undefined && this.pending.has(msg.id)) {
      const { resolve, reject } = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.type === 'error') reject(new RequestError(msg.data || {}));
      else resolve(msg);
      return;
    }
    // §2: an expired or refused token is reported as `error unauthenticated`, then a 4401 close.
    if (msg.type === 'error' && msg.data && msg.data.code === 'unauthenticated') noteRefusal(msg.data.message);
    this.emit('message', msg);
  }

  // Waits `delayMs` (default: the next step of the backoff) with a countdown in the status, then opens.
  scheduleReconnect(delayMs, code) {
    const delay = delayMs ?? this.backoffMs[Math.min(this.attempt, this.backoffMs.length - 1)];
    this.attempt++;
    this.emit('reconnecting', { delayMs: delay, code, attempt: this.attempt });
    const due = Date.now() + delay;
    const tick = () => {
      if (this.stopped) return clearInterval(this.tickTimer);
      this.setStatus('reconnecting', Math.max(0, Math.ceil((due - Date.now()) / 1000)));
      if (Date.now() >= due) {
        clearInterval(this.tickTimer);
        this.open();
      }
    };
    clearInterval(this.tickTimer);
    this.tickTimer = setInterval(tick, kTickMs);
    tick();
  }

  // How long before expiry a token is renewed: `refreshMarginMs`, else a quarter of what is left (≤ 60 s).
  marginMs() {
    if (this.refreshMarginMs !== null) return this.refreshMarginMs;
    const left = (this.expiresAt ?? Date.now()) - Date.now();
    return Math.min(60000, Math.max(0, left / 4));
  }

  // Whether the token expires (or expired) within the renewal margin.
  tokenIsStale() {
    const exp = expiryOf(this.token);
    return exp !== null && exp - Date.now() <= Math.min(60000, this.refreshMarginMs ?? 1000);
  }

  // Arms the timer that asks `refreshToken` for a fresh token before `expiresAt`.
  scheduleRenewal() {
    clearTimeout(this.refreshTimer);
    if (!this.refreshToken || !this.expiresAt) return;
    const wait = Math.max(0, this.expiresAt - this.marginMs() - Date.now());
    this.refreshTimer = setTimeout(() => this.renewToken(true), wait);
  }

  // Asks `refreshToken` for a fresh token; on a live connection presents it at once (§2), otherwise
  // keeps it for the next connection. A failure is reported as 'refresherror' and retried shortly.
  async renewToken(presentNow) {
    let token;
    try {
      token = await this.refreshToken({ expiresAt: this.expiresAt, token: this.token });
    } catch (err) {
      this.emit('refresherror', err);
      if (presentNow) this.retryRenewal();
      return;
    }
    if (typeof token !== 'string' || !token) {
      this.emit('refresherror', new TypeError('refreshToken() gave no token'));
      if (presentNow) this.retryRenewal();
      return;
    }
    this.token = token;
    this.emit('token', token);
    if (!presentNow || this.status !== 'live') return;
    try {
      await this.refresh(token);
    } catch (err) {
      this.emit('refresherror', err);
      if (err.code !== 'disconnected') this.retryRenewal();
    }
  }

  // Tries the renewal again in half of what is left before expiry (at least 1 s).
  retryRenewal() {
    clearTimeout(this.refreshTimer);
    const left = (this.expiresAt ?? Date.now()) - Date.now();
    this.refreshTimer = setTimeout(() => this.renewToken(true), Math.max(1000, left / 2));
  }
}
