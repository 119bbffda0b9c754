// The web client behind a real nginx: ptyhubd at the sub-path /term (--base-path /term) with nginx as its
// trusted reverse proxy, and Debian's Chromium driven by playwright-core through nginx.
//
//   node tests/web/proxy.mjs PTYHUBD [ARTIFACT_DIR]
//
// nginx runs as this user, in the foreground (daemon off), with its own prefix, configuration, logs and
// temporary paths in a temporary directory, on a free loopback port. It connects to the daemon from
// 127.0.0.2 (proxy_bind), the one address the daemon trusts (--trusted-proxy 127.0.0.2); the browser's own
// address, 127.0.0.1, reaches the daemon only in X-Forwarded-For. The nginx configuration is the one of
// docs/deploy.md, without TLS.
//
// Checks: the page, its assets and its WebSocket work through the proxy; a connection dropped by killing
// nginx's worker (SIGKILL; the master starts a new one) is resumed through the proxy without a hole; the
// audit lines name the browser's address, not the proxy's; forwarding headers from a peer that is not the
// trusted proxy are ignored (address and Origin check); the routes answer under /term only.
//
// Screenshots go to ARTIFACT_DIR (default: ./web-proxy-artifacts). Exits 0 when every check passed, 1
// otherwise, and 77 (skipped) when /usr/bin/chromium or /usr/sbin/nginx is not installed.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { check, finish, listening, results, step } from './checks.mjs';

const kChromium = '/usr/bin/chromium';
const kNginx = '/usr/sbin/nginx';
const kSkip = 77;
const kBase = '/term';
const kProxyAddress = '127.0.0.2';  // nginx's address as the daemon sees it (proxy_bind)
const here = dirname(fileURLToPath(import.meta.url));
const webDir = resolve(here, '../../web');
const ptyhubd = process.argv[2];
const artifacts = resolve(process.argv[3] || 'web-proxy-artifacts');

if (!ptyhubd) {
  console.error('usage: proxy.mjs PTYHUBD [ARTIFACT_DIR]');
  process.exit(2);
}
for (const program of [kChromium, kNginx]) {
  if (!existsSync(program)) {
    console.log(`SKIP: ${program} is not installed (apt-get install chromium nginx-light)`);
    process.exit(kSkip);
  }
}
const require = createRequire(join(webDir, 'package.json'));
const { chromium } = require('playwright-core');
const { WebSocket } = require('ws');

// ---- checks ----


// Polls `condition` (sync or async) every 50 ms until it returns a truthy value, which is returned;
// throws `what` after `timeout` ms.
async function until(what, condition, timeout = 10000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---- processes: every one started here is stopped by its PID, also when the test fails ----

const work = mkdtempSync(join(tmpdir(), 'ptyhub-proxy-'));
const children = new Set();
function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
// Last resort (an uncaught error, a signal): what is still running gets SIGKILL, the directory goes.
process.on('exit', () => {
  for (const child of children) {
    try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  rmSync(work, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(1));

async function stop(child, signal = 'SIGTERM') {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  process.kill(child.pid, signal);
  const timer = setTimeout(() => { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } }, 10000);
  await exited;
  clearTimeout(timer);
}

// ---- the daemon ----

const secret = join(work, 'secret');
const home = join(work, 'home');
mkdirSync(home);
mkdirSync(artifacts, { recursive: true });
writeFileSync(secret, execFileSync('openssl', ['rand', '-base64', '32']), { mode: 0o600 });

function token(sub, scope = 'terminal:create terminal:read terminal:write') {
  return execFileSync(ptyhubd, ['token', '--sub', sub, '--scope', scope, '--ttl', '3600', '--jwt-secret-file', secret])
    .toString().trim();
}

function startDaemon() {
  const child = track(spawn(ptyhubd, ['--listen', '127.0.0.1:0', '--base-path', kBase,
    '--trusted-proxy', kProxyAddress, '--jwt-secret-file', secret, '--shell', '/bin/bash', '--home', home,
    '--log-level', 'info'],
  // HOME is the test's own: the shells read no start-up file of the machine's user.
  { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: home } }));
  return listening(child);
}

// ---- nginx ----

// The server block of docs/deploy.md (there with TLS), for `daemonPort`.
function nginxConf(dir, port, daemonPort) {
  // As root, nginx needs a `user` for its workers; root itself is fine for a test (the workers then read
  // this directory, which mkdtemp made 0700). As anyone else the directive would only be warned about.
  const user = process.getuid() === 0 ? `user ${userInfo().username};\n` : '';
  return `# Written by tests/web/proxy.mjs.
daemon off;
master_process on;
${user}pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
worker_processes 1;
events { worker_connections 256; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;

  map $http_upgrade $connection_upgrade {
    default upgrade;
    '' close;
  }

  server {
    listen 127.0.0.1:${port};

    location ${kBase}/ {
      proxy_pass http://127.0.0.1:${daemonPort};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_bind ${kProxyAddress};
      proxy_read_timeout 3600s;
      proxy_buffering off;
    }
  }
}
`;
}

// A loopback port that was free a moment ago (the kernel's choice for port 0).
function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

// Starts nginx in front of the daemon. Ready means its pid file names it: nginx writes the file after it
// bound its port. Another process may take the port between freePort() and nginx's bind: then nginx
// exits with "Address already in use" and another port is tried.
async function startNginx(daemonPort) {
  const dir = join(work, 'nginx');
  mkdirSync(dir);
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    rmSync(join(dir, 'nginx.pid'), { force: true });
    writeFileSync(join(dir, 'nginx.conf'), nginxConf(dir, port, daemonPort));
    // -e: the error log from the start (before the configuration is read), not /var/log/nginx.
    const child = track(spawn(kNginx, ['-p', `${dir}/`, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')],
      { stdio: ['ignore', 'pipe', 'pipe'] }));
    let output = '';
    child.stdout.on('data', (chunk) => { output += chunk; });
    child.stderr.on('data', (chunk) => { output += chunk; });
    const pidFile = join(dir, 'nginx.pid');
    await until('nginx to bind its port or exit', () => child.exitCode !== null || child.signalCode !== null ||
      (existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() === String(child.pid)));
    if (child.exitCode === null && child.signalCode === null) return { child, port, dir };
    const errors = `${output}${existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : ''}`;
    if (!/Address already in use/.test(errors) || attempt === 5) throw new Error(`nginx did not start:\n${errors}`);
    console.log(`     port ${port} was taken, trying another`);
  }
}

// The worker processes of nginx's master (its children).
function nginxWorkers(master) {
  const direct = `/proc/${master}/task/${master}/children`;
  if (existsSync(direct)) return readFileSync(direct, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  return execFileSync('ps', ['-o', 'pid=', '--ppid', String(master)]).toString().trim().split(/\s+/)
    .filter(Boolean).map(Number);
}

// ---- HTTP and WebSocket clients ----

function get(port, path, options = {}) {
  return new Promise((resolveResponse, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path, ...options }, (response) => {
      let body = '';
      response.on('data', (chunk) => { body += chunk; });
      response.on('end', () => resolveResponse({ status: response.statusCode, headers: response.headers, body }));
    });
    request.on('error', reject);
    request.setTimeout(10000, () => request.destroy(new Error(`GET ${path}: no answer`)));
  });
}

// Opens a WebSocket and authenticates with `jwt`. Resolves with the HTTP status of the upgrade (101 when it
// succeeded) and the type of the answer to `auth`; the socket is then closed.
function wsAuth(url, jwt, options = {}) {
  return new Promise((resolveResult, reject) => {
    const socket = new WebSocket(url, ['ptyhub.v1'], options);
    const timer = setTimeout(() => { socket.terminate(); reject(new Error(`${url}: no answer`)); }, 10000);
    const done = (result) => {
      clearTimeout(timer);
      socket.terminate();
      resolveResult(result);
    };
    socket.on('unexpected-response', (request, response) => done({ status: response.statusCode }));
    socket.on('open', () => socket.send(JSON.stringify({ type: 'auth', id: 1, data: { token: jwt } })));
    socket.on('message', (raw) => {
      const msg = JSON.parse(raw.toString());
      if (msg.id === 1) done({ status: 101, reply: msg.type });
    });
    socket.on('error', (err) => { clearTimeout(timer); reject(err); });
  });
}

// ---- page helpers (as in run.mjs) ----

const shot = async (page, name) => {
  await page.screenshot({ path: join(artifacts, `${name}.png`) });
  console.log(`     screenshot ${join(artifacts, `${name}.png`)}`);
};
const waitFor = (page, fn, arg, timeout = 10000) => page.waitForFunction(fn, arg, { timeout, polling: 50 });
const buffer = (page) => page.evaluate(() => window.ptyhub.bufferText());
const view = (page) => page.evaluate(() => window.ptyhub.view());

async function typeLine(page, line) {
  await page.locator('.pane:not([hidden]) .xterm').click();
  await page.keyboard.type(line, { delay: 5 });
  await page.keyboard.press('Enter');
}

async function waitForLine(page, pattern, timeout = 10000) {
  await waitFor(page, (p) => {
    const text = window.ptyhub.bufferText();
    return text !== null && new RegExp(p, 'm').test(text);
  }, pattern, timeout);
}

// The daemon's audit lines for `event` and `user`, e.g. `... info audit event=auth.ok user="alice" peer=...`.
// Null while there is none (for until()).
function auditLines(log, event, user) {
  const lines = log.split('\n').filter((line) => line.includes(`audit event=${event} `) && line.includes(`user="${user}"`));
  return lines.length ? lines : null;
}

// ---- scenarios ----

async function main() {
  const daemon = await startDaemon();
  const nginx = await startNginx(daemon.port);
  const proxied = `http://127.0.0.1:${nginx.port}`;
  console.log(`     ptyhubd on 127.0.0.1:${daemon.port}, nginx on 127.0.0.1:${nginx.port}`);
  const browser = await chromium.launch({ executablePath: kChromium, args: ['--no-sandbox', '--disable-gpu'] });

  try {
    await step('routes under /term, directly and through nginx', async () => {
      const direct = daemon.port;
      check('daemon: GET /term/healthz is 200', (await get(direct, `${kBase}/healthz`)).status === 200);
      check('daemon: GET /healthz is 404 (nothing outside the base path)', (await get(direct, '/healthz')).status === 404);
      const bare = await get(direct, kBase);
      check('daemon: GET /term is 308 to /term/', bare.status === 308 && bare.headers.location === `${kBase}/`,
        `${bare.status} ${bare.headers.location}`);
      check('nginx: GET /term/healthz is 200', (await get(nginx.port, `${kBase}/healthz`)).status === 200);
      check('nginx: GET /healthz is 404', (await get(nginx.port, '/healthz')).status === 404);
      // nginx's own answer for a location ending in a slash; the daemon's 308 is for a proxy that passes /term.
      const slash = await get(nginx.port, kBase);
      check('nginx: GET /term is 301 to /term/', slash.status === 301 && /^(http:\/\/[^/]+)?\/term\/$/.test(slash.headers.location || ''),
        `${slash.status} ${slash.headers.location}`);
    });

    await step('forwarding headers from a peer that is not the trusted proxy are ignored', async () => {
      const direct = `ws://127.0.0.1:${daemon.port}${kBase}/ws`;
      const forged = await wsAuth(direct, token('mallory'),
        { headers: { 'X-Forwarded-For': '203.0.113.9', 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'evil.example' } });
      check('a direct client with a forged X-Forwarded-For is authenticated', forged.status === 101 && forged.reply === 'auth.ok',
        JSON.stringify(forged));
      const [line] = await until('the audit line of mallory', () => auditLines(daemon.log(), 'auth.ok', 'mallory'));
      check('its audit line has its own address, peer="127.0.0.1"', line.includes('peer="127.0.0.1"'), line);
      check('203.0.113.9 appears nowhere in the log', !daemon.log().includes('203.0.113.9'));
      // The same header from the trusted proxy's address is believed: the trust is in the peer.
      const trusted = await wsAuth(direct, token('carol'),
        { localAddress: kProxyAddress, headers: { 'X-Forwarded-For': '198.51.100.7' } });
      check('a client from 127.0.0.2 is authenticated', trusted.status === 101 && trusted.reply === 'auth.ok',
        JSON.stringify(trusted));
      const [carol] = await until('the audit line of carol', () => auditLines(daemon.log(), 'auth.ok', 'carol'));
      check('from the trusted proxy, X-Forwarded-For gives the peer (198.51.100.7)', carol.includes('peer="198.51.100.7"'), carol);
      // A forged X-Forwarded-Host does not make a foreign Origin same-origin.
      const origin = `http://127.0.0.1:${nginx.port}`;
      const foreign = await wsAuth(direct, token('mallory'),
        { origin, headers: { 'X-Forwarded-Host': `127.0.0.1:${nginx.port}`, 'X-Forwarded-Proto': 'http' } });
      check('a direct upgrade with a foreign Origin and a forged X-Forwarded-Host is 403', foreign.status === 403,
        JSON.stringify(foreign));
    });

    await step('the Origin check through nginx', async () => {
      const url = `ws://127.0.0.1:${nginx.port}${kBase}/ws`;
      // nginx sends Host without the port ($host); only X-Forwarded-Host ($http_host) matches the Origin.
      const same = await wsAuth(url, token('dave'), { origin: `http://127.0.0.1:${nginx.port}` });
      check('the page\'s Origin passes through nginx', same.status === 101 && same.reply === 'auth.ok', JSON.stringify(same));
      const scheme = await wsAuth(url, token('dave'), { origin: `https://127.0.0.1:${nginx.port}` });
      check('an https Origin is refused when the proxy says http (403)', scheme.status === 403, JSON.stringify(scheme));
      const other = await wsAuth(url, token('dave'), { origin: 'http://evil.example' });
      check('a foreign Origin is refused through nginx (403)', other.status === 403, JSON.stringify(other));
    });

    const context = await browser.newContext({ viewport: { width: 1200, height: 760 }, colorScheme: 'light' });
    context.setDefaultTimeout(10000);
    const page = await context.newPage();
    const pageErrors = [];
    const responses = [];
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && /Content Security Policy/i.test(msg.text())) pageErrors.push(`CSP: ${msg.text()}`);
    });
    page.on('response', (response) => responses.push({ url: response.url(), status: response.status() }));
    const alice = token('alice');

    await step('the page through nginx: sign in, create a terminal, type', async () => {
      const response = await page.goto(`${proxied}${kBase}/#token=${alice}`);
      check('the page is served through nginx (200)', response.status() === 200, String(response.status()));
      const csp = response.headers()['content-security-policy'] || '';
      check('with its Content-Security-Policy', csp.includes("script-src 'self'") && csp.includes("connect-src 'self'"), csp);
      await waitFor(page, () => window.ptyhub.status() === 'live');
      check('the connection is live', true);
      check('the user is alice', (await page.evaluate(() => window.ptyhub.user())) === 'alice');
      const assets = responses.filter((r) => r.url.startsWith(`${proxied}${kBase}/assets/`));
      check('the assets came through nginx under /term/assets/', assets.length > 0 && assets.every((r) => r.status === 200),
        JSON.stringify(responses));
      check('nothing was fetched from elsewhere', responses.every((r) => r.url.startsWith(`${proxied}${kBase}/`)),
        JSON.stringify(responses));
      await page.click('#create-button');
      await waitFor(page, () => window.ptyhub.tabs().length === 1 && window.ptyhub.view().subscribed);
      await typeLine(page, 'echo proxied-$((6*7))');
      await waitForLine(page, '^proxied-42$');
      check('"proxied-42" is in the terminal', true);
      const access = readFileSync(join(nginx.dir, 'access.log'), 'utf8');
      check('nginx logged the page and its assets', access.includes(`"GET ${kBase}/ HTTP/1.1" 200`) &&
        access.includes(`"GET ${kBase}/assets/`), access);
      await shot(page, '01-proxied');
    });

    await step('the audit line names the browser, not the proxy', async () => {
      const [line] = await until('the audit line of alice', () => auditLines(daemon.log(), 'auth.ok', 'alice'));
      check('auth.ok of alice has peer="127.0.0.1" (from X-Forwarded-For)', line.includes('peer="127.0.0.1"'), line);
      check('no line names the proxy\'s address 127.0.0.2', !daemon.log().includes(`peer="${kProxyAddress}"`),
        daemon.log().split('\n').filter((l) => l.includes(kProxyAddress)).join('\n'));
    });

    await step('nginx\'s worker is killed: the page reconnects through nginx, no hole', async () => {
      const count = 100;
      // About 1 s of numbered lines: some are written while the connection is down (replayed on resume).
      await typeLine(page, `for i in $(seq 1 ${count}); do echo line-$i; [ $((i % 10)) = 0 ] && sleep 0.1; done; echo done-$((${count}))`);
      await waitForLine(page, '^line-10$');
      const before = await view(page);
      const history = (await page.evaluate(() => window.ptyhub.statusHistory())).length;
      const [worker] = nginxWorkers(nginx.child.pid);
      check('nginx has a worker', Number.isInteger(worker) && worker > 0, String(worker));
      process.kill(worker, 'SIGKILL');
      await waitFor(page, (n) => window.ptyhub.statusHistory().length > n && window.ptyhub.status() === 'live', history, 20000);
      const statuses = (await page.evaluate(() => window.ptyhub.statusHistory())).slice(history - 1);
      check('the page went live → reconnecting → connecting → live', statuses.join(' ').includes('live reconnecting connecting live'),
        statuses.join(' '));
      const workers = nginxWorkers(nginx.child.pid);
      check('the master started a new worker', workers.length === 1 && workers[0] !== worker, JSON.stringify(workers));
      await waitForLine(page, `^done-${count}$`, 20000);
      const text = await buffer(page);
      const missing = [];
      for (let i = 1; i <= count; i++) {
        const n = text.split('\n').filter((l) => l === `line-${i}`).length;
        if (n !== 1) missing.push(`${i}×${n}`);
      }
      check('every line is there exactly once', missing.length === 0, missing.slice(0, 10).join(' '));
      const after = await view(page);
      check('offsets stayed contiguous (no hole, no overlap)', after.stats.holes === 0 && after.stats.overlaps === 0,
        JSON.stringify(after.stats));
      check('output written while away was replayed on resume', after.stats.replayed > before.stats.replayed,
        JSON.stringify(after.stats));
      await typeLine(page, 'echo again-$((6*7+1))');
      await waitForLine(page, '^again-43$');
      check('typing works after the reconnection ("again-43")', true);
      check('the old output is still there ("proxied-42")', /^proxied-42$/m.test(await buffer(page)));
      const lines = await until('the second auth.ok of alice', () => {
        const found = auditLines(daemon.log(), 'auth.ok', 'alice') || [];
        return found.length >= 2 && found;
      });
      check('the reconnection authenticated again as 127.0.0.1', lines.length >= 2 && lines.every((l) => l.includes('peer="127.0.0.1"')),
        lines.join('\n'));
      await shot(page, '02-reconnected');
    });

    check('no JavaScript error and no CSP violation', pageErrors.length === 0, pageErrors.join('\n'));
  } finally {
    await browser.close();
    await stop(nginx.child);
    await stop(daemon.child);
    if (results.failures.length) {
      console.log(`--- ptyhubd log ---\n${daemon.log().slice(-4000)}`);
      for (const name of ['error.log', 'access.log']) {
        const file = join(nginx.dir, name);
        if (existsSync(file)) console.log(`--- nginx ${name} ---\n${readFileSync(file, 'utf8').slice(-4000)}`);
      }
    }
  }
}

try {
  await main();
} catch (err) {
  check('the test ran', false, err.stack || String(err));
}
finish();
