// One WebSocket to ptyhubd (subprotocol ptyhub.v1), authenticated by a first `auth` message (works
// on plain and TLS listeners alike), with request/reply matching by `id` and reconnection with
// exponential backoff. Events (messages without a pending id) go to `onMessage`.
//
// Status: 'connecting' → 'live' → ('reconnecting' → 'connecting' → 'live')* ; 'signed-out' when the
// token is refused (no retry: a new token is needed).

const kBackoffMs = [1000, 2000, 4000, 8000, 15000, 30000];
const kUnauthorizedClose = 4401;
const kServiceRestartClose = 1012;

export class RequestError extends Error {
  constructor(data) {
    super(data.message || data.code);
    this.code = data.code;
    this.field = data.field;
  }
}

export class Connection {
  // handlers: onStatus(status, detail), onLive(authOk), onMessage(msg), onSignedOut(reason)
  constructor(url, token, handlers) {
    this.url = url;
    this.token = token;
    this.handlers = handlers;
    this.socket = null;
    this.nextId = 1;
    this.pending = new Map();
    this.attempt = 0;
    this.timer = null;
    this.status = 'idle';
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  // Closes for good (sign-out).
  stop() {
    this.stopped = true;
    clearInterval(this.timer);
    if (this.socket) this.socket.close(1000, 'bye');
    this.socket = null;
    this.setStatus('idle');
  }

  // Closes the socket as a network failure would; the connection comes back by itself.
  drop() {
    if (this.socket) this.socket.close(4000, 'dropped by the page');
  }

  // Sends a request; resolves with the reply message, rejects with a RequestError.
  request(type, data = {}) {
    return new Promise((resolve, reject) => {
      if (this.status !== 'live' && type !== 'auth') {
        reject(new RequestError({ code: 'disconnected', message: 'not connected' }));
        return;
      }
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      this.socket.send(JSON.stringify({ type, id, data }));
    });
  }

  // Sends a new token on the live connection (same user, later expiry).
  async refresh(token) {
    const reply = await this.request('auth', { token });
    this.token = token;
    return reply.data;
  }

  setStatus(status, detail) {
    this.status = status;
    this.handlers.onStatus(status, detail);
  }

  open() {
    this.setStatus('connecting');
    let socket;
    try {
      socket = new WebSocket(this.url, ['ptyhub.v1']);
    } catch (err) {
      this.handlers.onSignedOut(`cannot connect: ${err.message}`);
      return;
    }
    this.socket = socket;
    let refusal = null;
    socket.onopen = () => {
      const id = this.nextId++;
      this.pending.set(id, {
        resolve: (reply) => {
          this.attempt = 0;
          this.setStatus('live');
          this.handlers.onLive(reply.data);
        },
        reject: (err) => {
          refusal = err.message;
        },
      });
      socket.send(JSON.stringify({ type: 'auth', id, data: { token: this.token } }));
    };
    socket.onmessage = (event) => this.onFrame(event.data, (reason) => (refusal = reason));
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      for (const { reject } of this.pending.values()) {
        reject(new RequestError({ code: 'disconnected', message: 'connection closed' }));
      }
      this.pending.clear();
      if (this.stopped) return;
      if (event.code === kUnauthorizedClose || refusal) {
        this.setStatus('signed-out');
        this.handlers.onSignedOut(refusal || event.reason || 'the token was refused');
        return;
      }
      // 1012: the daemon is replacing itself (a live upgrade); it is back at once.
      if (event.code === kServiceRestartClose) this.attempt = 0;
      this.scheduleReconnect(event.code === kServiceRestartClose ? 0 : undefined);
    };
  }

  onFrame(text, noteRefusal) {
    let msg;
    try {
      msg = JSON.parse(text);
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
    if (msg.type === 'error' && msg.data && msg.data.code === 'unauthenticated') noteRefusal(msg.data.message);
    this.handlers.onMessage(msg);
  }

  scheduleReconnect(delayMs) {
    const delay = delayMs ?? kBackoffMs[Math.min(this.attempt, kBackoffMs.length - 1)];
    this.attempt++;
    const due = Date.now() + delay;
    const tick = () => {
      const left = Math.max(0, Math.ceil((due - Date.now()) / 1000));
      this.setStatus('reconnecting', left);
      if (Date.now() >= due) {
        clearInterval(this.timer);
        this.open();
      }
    };
    clearInterval(this.timer);
    this.timer = setInterval(tick, 250);
    tick();
  }

  // Skips the wait of a scheduled reconnection.
  reconnectNow() {
    if (this.status !== 'reconnecting') return;
    clearInterval(this.timer);
    this.open();
  }
}
