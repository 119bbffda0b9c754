// The error a request rejects with: the daemon's `error {code, message, field?}` reply
// (docs/protocol.md §3), or `disconnected` when the connection closed before the reply came.

export class RequestError extends Error {
  // From the `data` of an `error` reply.
  // data: {code, message?, field?}
  constructor(data) {
    super(data.message || data.code);
    this.name = 'RequestError';
    /** @type {string} */
    this.code = data.code;
    /** @type {string|undefined} */
    this.field = data.field;
  }
}

// A `disconnected` RequestError with `message`.
export function disconnected(message = 'not connected') {
  return new RequestError({ code: 'disconnected', message });
}
