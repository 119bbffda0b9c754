// What the @ptyhub/client tests share: the real ptyhubd started on a free loopback port with its own
// HS256 secret (the wait for its port is tests/web/checks.mjs's), tokens made by `ptyhubd token`, a
// WebSocket class (from the `ws` package in web/node_modules) that records every socket and every
// frame the client sends, bounded waits on conditions, and the daemon's /metrics.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listening } from '../web/checks.mjs';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '../..');
const require = createRequire(join(repoRoot, 'web/package.json'));
const WS = require('ws').WebSocket;

// A `ws` WebSocket that keeps a list of its instances and of the text frames each sent.
export class TrackedWebSocket extends WS {
  static sockets = [];

  constructor(url, protocols) {
    super(url, protocols);
    this.sentFrames = [];
    TrackedWebSocket.sockets.push(this);
  }

  // Records the frame, then sends it.
  send(data, ...rest) {
    this.sentFrames.push(String(data));
    return super.send(data, ...rest);
  }

  // The newest socket that is open.
  static current() {
    return [...TrackedWebSocket.sockets].reverse().find((s) => s.readyState === WS.OPEN) || null;
  }
}

// A work directory with a secret, a home and a repos_root; `daemon(args)` starts ptyhubd in it.
export function workspace(ptyhubd) {
  const work = mkdtempSync(join(tmpdir(), 'ptyhub-js-'));
  const secret = join(work, 'secret');
  const home = join(work, 'home');
  const repos = join(work, 'repos');
  mkdirSync(home);
  mkdirSync(repos);
  writeFileSync(secret, execFileSync('openssl', ['rand', '-base64', '32']), { mode: 0o600 });
  return {
    work, secret, home, repos,
    // A token for `sub` with `scope`, valid `ttl` seconds.
    token(sub, scope = 'terminal:create terminal:read terminal:write git:run', ttl = 3600) {
      return execFileSync(ptyhubd, ['token', '--sub', sub, '--scope', scope, '--ttl', String(ttl), '--jwt-secret-file', secret])
        .toString().trim();
    },
    // Starts ptyhubd on 127.0.0.1:0; resolves to {child, port, url, log()} once it listens.
    async daemon(extra = []) {
      const child = spawn(ptyhubd, ['--listen', '127.0.0.1:0', '--jwt-secret-file', secret, '--repos-root', repos,
        '--shell', '/bin/sh', '--home', home, '--log-level', 'info', ...extra],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: home } });
      const d = await listening(child);
      return { ...d, url: `ws://127.0.0.1:${d.port}/ws`, http: `http://127.0.0.1:${d.port}` };
    },
  };
}

// Resolves once `condition()` is truthy (polled every 20 ms), with its value; rejects after `timeoutMs`.
export async function until(what, condition, timeoutMs = 15000) {
  const due = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > due) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// Resolves or rejects as `promise` does; rejects if it has not settled within `timeoutMs`.
export function within(what, promise, timeoutMs = 15000) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Resolves with the value of `probe()` once it stayed the same for `quietMs` (bounded by `timeoutMs`).
export async function settled(what, probe, quietMs, timeoutMs = 15000) {
  let value = await probe();
  let since = Date.now();
  return until(what, async () => {
    const now = await probe();
    if (now !== value) {
      value = now;
      since = Date.now();
      return false;
    }
    return Date.now() - since >= quietMs ? { value } : false;
  }, timeoutMs).then((r) => r.value);
}

// One metric of the daemon's /metrics (docs/protocol.md §1), as a number.
export async function metric(daemon, name) {
  const text = await (await fetch(`${daemon.http}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`no metric ${name}`);
  return Number(line.split(' ')[1]);
}

// A git repository committed with a few files, cloned bare into `repos/origin.git`.
export function bareRepository(ws) {
  const source = join(ws.work, 'source');
  const env = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.org', GIT_COMMITTER_NAME: 't',
    GIT_COMMITTER_EMAIL: 't@example.org', GIT_CONFIG_GLOBAL: '/dev/null' };
  mkdirSync(source);
  execFileSync('git', ['init', '-q', '-b', 'main'], { cwd: source, env });
  for (let i = 0; i < 50; i++) writeFileSync(join(source, `file-${i}.txt`), `file ${i}\n`);
  execFileSync('git', ['add', '.'], { cwd: source, env });
  execFileSync('git', ['commit', '-q', '-m', 'files'], { cwd: source, env });
  execFileSync('git', ['clone', '-q', '--bare', source, join(ws.repos, 'origin.git')], { env });
}
