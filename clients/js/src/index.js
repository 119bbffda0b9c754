// @ptyhub/client: a client of ptyhubd's WebSocket protocol `ptyhub.v1` (docs/protocol.md) for browsers
// and Node ≥ 18. See docs/client-js.md for the API; `@ptyhub/client/xterm` binds an xterm.js Terminal.
import { PtyhubClient } from './client.js';

export { PtyhubClient };
export { Connection, kDefaultBackoffMs } from './connection.js';
export { Attachment, decodeBase64, encodeBase64 } from './attachment.js';
export { TerminalWatch } from './terminals.js';
export { GitOperation } from './git.js';
export { RequestError } from './errors.js';
export { Emitter } from './emitter.js';
export { readClaims, expiryOf } from './token.js';

// A client connected to `url` with `token` (the other options as for PtyhubClient).
export function connect(url, token, options = {}) {
  return new PtyhubClient({ ...options, url, token });
}
