// Browser tests of the web client: the real ptyhubd (port 0, its own secret, a temporary repos_root
// holding a bare repository) and Debian's Chromium driven by playwright-core.
//
//   node tests/web/run.mjs PTYHUBD [ARTIFACT_DIR]
//
// Screenshots of each state go to ARTIFACT_DIR (default: ./web-artifacts). Exits 0 when every check
// passed, 1 otherwise, and 77 (skipped) when /usr/bin/chromium is not installed.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { check, finish, listening, results, step } from './checks.mjs';

const kChromium = '/usr/bin/chromium';
const kSkip = 77;
const here = dirname(fileURLToPath(import.meta.url));
const webDir = resolve(here, '../../web');
const ptyhubd = process.argv[2];
const artifacts = resolve(process.argv[3] || 'web-artifacts');

if (!ptyhubd) {
  console.error('usage: run.mjs PTYHUBD [ARTIFACT_DIR]');
  process.exit(2);
}
if (!existsSync(kChromium)) {
  console.log(`SKIP: ${kChromium} is not installed (apt-get install chromium)`);
  process.exit(kSkip);
}
const require = createRequire(join(webDir, 'package.json'));
const { chromium } = require('playwright-core');
const { WebSocket } = require('ws');

// ---- checks ----


// ---- the daemon ----

const work = mkdtempSync(join(tmpdir(), 'ptyhub-web-'));
const secret = join(work, 'secret');
const repos = join(work, 'repos');
const home = join(work, 'home');
mkdirSync(repos);
mkdirSync(home);
mkdirSync(artifacts, { recursive: true });
writeFileSync(secret, execFileSync('openssl', ['rand', '-base64', '32']), { mode: 0o600 });

function git(args, cwd) {
  return execFileSync('git', args, {
    cwd,
    env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.org', GIT_COMMITTER_NAME: 't',
      GIT_COMMITTER_EMAIL: 't@example.org', GIT_CONFIG_GLOBAL: '/dev/null' },
  });
}

// A bare repository with a few hundred objects, so that git prints progress while cloning it.
function makeRepository() {
  const source = join(work, 'source');
  mkdirSync(source);
  git(['init', '-q', '-b', 'main'], source);
  for (let i = 0; i < 400; i++) writeFileSync(join(source, `file-${i}.txt`), `file ${i}\n${'x'.repeat(i * 7)}\n`);
  git(['add', '.'], source);
  git(['commit', '-q', '-m', 'files'], source);
  git(['clone', '-q', '--bare', source, join(repos, 'origin.git')], work);
}

function token(sub, scope) {
  return execFileSync(ptyhubd, ['token', '--sub', sub, '--scope', scope, '--ttl', '3600', '--jwt-secret-file', secret])
    .toString().trim();
}

function startDaemon(extra = []) {
  const child = spawn(ptyhubd, ['--listen', '127.0.0.1:0', '--jwt-secret-file', secret, '--repos-root', repos,
    '--shell', '/bin/bash', '--home', home, '--log-level', 'info', ...extra],
  // HOME is the test's own: the shells read no start-up file of the machine's user (whose .bashrc may be
  // slow, or wait on a lock a killed shell left behind).
  { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: home } });
  return listening(child);
}

// A minimal protocol client for what the page cannot do itself (sharing as the owner).
function wsRequest(port, jwt, messages) {
  return new Promise((resolveAll, reject) => {
    const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`, ['ptyhub.v1']);
    const replies = [];
    let index = 0;
    const sendNext = () => socket.send(JSON.stringify({ ...messages[index], id: index + 1 }));
    socket.on('open', () => socket.send(JSON.stringify({ type: 'auth', id: 0, data: { token: jwt } })));
    socket.on('message', (raw) => {
      const msg = JSON.parse(raw.toString());
      if (msg.id === 0 && msg.type === 'auth.ok') return sendNext();
      if (msg.id !== index + 1) return;
      replies.push(msg);
      if (++index < messages.length) sendNext();
      else {
        socket.close();
        resolveAll(replies);
      }
    });
    socket.on('error', reject);
    setTimeout(() => reject(new Error('no reply from ptyhubd')), 10000);
  });
}

// ---- page helpers ----

const shot = async (page, name) => {
  await page.screenshot({ path: join(artifacts, `${name}.png`) });
  console.log(`     screenshot ${join(artifacts, `${name}.png`)}`);
};
const waitFor = (page, fn, arg, timeout = 10000) => page.waitForFunction(fn, arg, { timeout, polling: 50 });
const buffer = (page, id) => page.evaluate((i) => window.ptyhub.bufferText(i), id);
const view = (page, id) => page.evaluate((i) => window.ptyhub.view(i), id);

// Types a command line into the active terminal (the page must have focus in it).
async function typeLine(page, line) {
  await page.locator('.pane:not([hidden]) .xterm').click();
  await page.keyboard.type(line, { delay: 5 });
  await page.keyboard.press('Enter');
}

// Waits until a line of the active terminal's buffer matches `pattern` (a regex source).
async function waitForLine(page, pattern, timeout = 10000) {
  await waitFor(page, (p) => {
    const text = window.ptyhub.bufferText();
    return text !== null && new RegExp(p, 'm').test(text);
  }, pattern, timeout);
}

// The visible lines of a terminal's screen in xterm.js (buffer.active.getLine(i).translateToString()),
// with its cursor and buffer type (normal or alternate).
const screen = (page, id) => page.evaluate((i) => window.ptyhub.screenLines(i), id);

// Resolves with the screen of terminal `id` once it stayed the same for `quietMs` (bounded by `timeoutMs`).
async function stableScreen(page, id, quietMs = 500, timeoutMs = 20000) {
  await waitFor(page, ([i, quiet]) => {
    const now = JSON.stringify(window.ptyhub.screenLines(i));
    const seen = (window.stableScreens ||= {});
    if (!seen[i] || seen[i].text !== now) {
      seen[i] = { text: now, since: Date.now() };
      return false;
    }
    return Date.now() - seen[i].since >= quiet;
  }, [id, quietMs], timeoutMs);
  return screen(page, id);
}

// ---- scenarios ----

async function main() {
  makeRepository();
  const daemon = await startDaemon();
  const base = `http://127.0.0.1:${daemon.port}`;
  const alice = token('alice', 'terminal:create terminal:read terminal:write git:run');
  const bob = token('bob', 'terminal:read terminal:write');
  const browser = await chromium.launch({ executablePath: kChromium, args: ['--no-sandbox', '--disable-gpu'] });
  const context = await browser.newContext({ viewport: { width: 1400, height: 860 }, colorScheme: 'light' });
  context.setDefaultTimeout(10000);
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(String(err)));
  // A resource or connection the page's Content-Security-Policy blocks is reported on the console.
  const cspViolation = (msg) => {
    if (msg.type() === 'error' && /Content Security Policy/i.test(msg.text())) pageErrors.push(`CSP: ${msg.text()}`);
  };
  page.on('console', cspViolation);
  let terminalId = null;

  try {
    await step('sign in with the fragment token', async () => {
      const response = await page.goto(`${base}/#token=${alice}`);
      const csp = response.headers()['content-security-policy'] || '';
      check('the page is served with a Content-Security-Policy', csp.includes("script-src 'self'") && csp.includes("frame-ancestors 'self'"), csp);
      await waitFor(page, () => window.ptyhub.status() === 'live');
      check('the connection is live', true);
      check('the user is alice', (await page.evaluate(() => window.ptyhub.user())) === 'alice');
      const url = page.url();
      check('the token left the address bar', !url.includes('token') && !url.includes('#'), url);
      check('the token is in sessionStorage', (await page.evaluate(() => sessionStorage.getItem('ptyhub.token'))) === alice);
      check('the status shows Live', (await page.textContent('#status')).trim() === 'Live');
      await shot(page, '01-signed-in');
    });

    await step('create a terminal and echo hello', async () => {
      await page.click('#create-button');
      await waitFor(page, () => window.ptyhub.tabs().length === 1 && window.ptyhub.view().subscribed);
      terminalId = await page.evaluate(() => window.ptyhub.activeId());
      check('a tab is open for the new terminal', typeof terminalId === 'string' && terminalId.length === 22);
      await waitFor(page, (id) => document.querySelector(`#terminal-rows tr[data-id="${id}"]`) !== null, terminalId);
      check('the terminal is in the list', true);
      await typeLine(page, 'echo hello');
      await waitForLine(page, '^hello$');
      check('"hello" is in the xterm buffer', true);
      const row = await page.textContent(`#terminal-rows tr[data-id="${terminalId}"]`);
      check('the list row shows owner and state', row.includes('alice') && row.includes('running'), row);
      await shot(page, '02-echo-hello');
    });

    await step('resize the viewport: stty size follows', async () => {
      const before = await view(page);
      await page.setViewportSize({ width: 1100, height: 640 });
      await waitFor(page, (b) => {
        const v = window.ptyhub.view();
        return (v.cols !== b.cols || v.rows !== b.rows) && v.serverCols === v.cols && v.serverRows === v.rows;
      }, before);
      const after = await view(page);
      check('xterm was fitted to the smaller window', after.cols < before.cols && after.rows < before.rows,
        `${before.cols}x${before.rows} → ${after.cols}x${after.rows}`);
      await typeLine(page, 'stty size');
      await waitForLine(page, `^${after.rows} ${after.cols}$`);
      check(`stty size prints "${after.rows} ${after.cols}"`, true);
      await shot(page, '03-resized');
    });

    await step('drop the connection: reconnect without hole or duplicate', async () => {
      const count = 300;
      // About 3 s of numbered lines: some are written while the page is away (replayed on resume),
      // some after it is back (live).
      await typeLine(page,
        `for i in $(seq 1 ${count}); do echo line-$i; [ $((i % 10)) = 0 ] && sleep 0.1; done; echo done-$((${count}))`);
      await waitForLine(page, '^line-20$');
      const before = await view(page);
      await page.evaluate(() => window.ptyhub.debugDropConnection());
      await waitFor(page, () => window.ptyhub.status() === 'reconnecting');
      check('the status shows reconnecting', /Reconnecting in \d+ s/.test(await page.textContent('#status')),
        await page.textContent('#status'));
      await shot(page, '04-reconnecting');
      await waitFor(page, () => window.ptyhub.status() === 'live', undefined, 15000);
      check('the page reconnected by itself', true);
      await waitForLine(page, `^done-${count}$`, 20000);
      const text = await buffer(page);
      const seen = new Map();
      for (const line of text.split('\n')) {
        const m = line.match(/^line-(\d+)$/);
        if (m) seen.set(Number(m[1]), (seen.get(Number(m[1])) || 0) + 1);
      }
      const missing = [];
      const doubled = [];
      for (let i = 1; i <= count; i++) {
        if (!seen.has(i)) missing.push(i);
        else if (seen.get(i) > 1) doubled.push(i);
      }
      check('no line is missing after the reconnection', missing.length === 0, `missing ${missing.slice(0, 10)}`);
      check('no line is doubled after the reconnection', doubled.length === 0, `doubled ${doubled.slice(0, 10)}`);
      const after = await view(page);
      check('output offsets stayed contiguous (no hole, no overlap)',
        after.stats.holes === 0 && after.stats.overlaps === 0, JSON.stringify(after.stats));
      check('output arrived after the reconnection', after.next > before.next);
      check('output written while away was replayed on resume', after.stats.replayed > before.stats.replayed,
        JSON.stringify(after.stats));
      const history = await page.evaluate(() => window.ptyhub.statusHistory());
      check('status went live → reconnecting → connecting → live',
        history.join(' ').includes('live reconnecting connecting live'), history.join(' '));
      await shot(page, '05-reconnected');
    });

    await step('flow control: a flood of output pauses and resumes, nothing lost', async () => {
      // Small watermarks, so that the pause does not depend on how fast this machine's xterm parses.
      await page.evaluate(() => window.ptyhub.setFlowControl(16 * 1024, 4 * 1024));
      const before = await view(page);
      await typeLine(page, 'seq 1 400000; echo flood-done');
      await waitForLine(page, '^flood-done$', 60000);
      const after = await view(page);
      check('the last line of the flood arrived', /^400000$/m.test(await buffer(page)));
      check('offsets stayed contiguous under load', after.stats.holes === 0 && after.stats.overlaps === 0,
        JSON.stringify(after.stats));
      check('the terminal was paused above the high watermark and resumed',
        after.stats.pauses > before.stats.pauses && after.stats.resumes === after.stats.pauses && !after.paused,
        JSON.stringify(after.stats));
      await page.evaluate(() => window.ptyhub.setFlowControl(128 * 1024, 16 * 1024));
      await typeLine(page, 'clear');
    });

    await step('git clone with progress', async () => {
      await page.selectOption('#git-form select[name=operation]', 'clone');
      await page.fill('#git-form input[name=repo]', 'work');
      await page.fill('#git-form input[name=url]', `file://${join(repos, 'origin.git')}`);
      await page.click('#git-form button[name=start]');
      await waitFor(page, () => window.ptyhub.gitOperations().some((op) => op.status !== 'running'), undefined, 30000);
      const [op] = await page.evaluate(() => window.ptyhub.gitOperations());
      check('the clone succeeded', op.status === 'succeeded' && op.exitCode === 0, JSON.stringify(op));
      const full = Object.entries(op.phases).filter(([, p]) => p.percent === 100).map(([name]) => name);
      check('a progress phase reached 100 %', full.length > 0, JSON.stringify(op.phases));
      const bar = await page.$$eval(`#git-ops li[data-id="${op.operationId}"] progress`, (bars) =>
        bars.map((b) => ({ value: b.value, max: b.max })));
      check('its progress bar is full', bar.some((b) => b.value === 100 && b.max === 100), JSON.stringify(bar));
      const item = await page.textContent(`#git-ops li[data-id="${op.operationId}"]`);
      check('the operation is listed as succeeded with exit 0', item.includes('succeeded') && item.includes('exit 0'), item);
      check('the clone exists on disk', existsSync(join(repos, 'work', '.git')));
      await page.click(`#git-ops li[data-id="${op.operationId}"] .op-head`);
      const output = await page.textContent('#git-detail pre');
      check('its output is shown on click', output.includes('Cloning into'), output);
      await shot(page, '06-git-clone');
    });

    await step('a read-only shared terminal refuses typing', async () => {
      await typeLine(page, 'echo before-bob');
      await waitForLine(page, '^before-bob$');
      const [shared] = await wsRequest(daemon.port, alice,
        [{ type: 'shell.share', data: { terminalId, user: 'bob', mode: 'read' } }]);
      check('alice shared the terminal with bob read-only', shared.type === 'shell.shared', JSON.stringify(shared));
      const bobContext = await browser.newContext({ viewport: { width: 1200, height: 760 }, colorScheme: 'dark' });
      bobContext.setDefaultTimeout(10000);
      const bobPage = await bobContext.newPage();
      bobPage.on('pageerror', (err) => pageErrors.push(String(err)));
      bobPage.on('console', cspViolation);
      await bobPage.goto(base);
      await bobPage.waitForSelector('#signin[open]');
      check('without a token the sign-in form is shown', true);
      await bobPage.fill('#signin-token', bob);
      await bobPage.click('#signin-form button[type=submit]');
      await waitFor(bobPage, () => window.ptyhub.status() === 'live');
      check('bob signed in with the pasted token', (await bobPage.evaluate(() => window.ptyhub.user())) === 'bob');
      await bobPage.click(`#terminal-rows tr[data-id="${terminalId}"] button.attach`);
      await waitFor(bobPage, () => window.ptyhub.view() && window.ptyhub.view().readOnly === true);
      check('the terminal is marked read-only', await bobPage.isVisible('.tab .badge.readonly'));
      await waitFor(bobPage, () => /^before-bob$/m.test(window.ptyhub.bufferText()));
      check('bob sees the terminal history', true);
      await typeLine(bobPage, 'echo typed-by-bob');
      await typeLine(page, 'echo seen-by-bob');
      await waitFor(bobPage, () => /^seen-by-bob$/m.test(window.ptyhub.bufferText()));
      check('bob sees alice\'s new output live', true);
      const bobView = await view(bobPage);
      check('bob\'s keys were not sent', bobView.stats.droppedInput > 0, JSON.stringify(bobView.stats));
      check('bob\'s typing never reached the terminal', !(await buffer(page, terminalId)).includes('typed-by-bob'));
      const row = await bobPage.textContent(`#terminal-rows tr[data-id="${terminalId}"]`);
      check('bob has no Kill button on alice\'s terminal', !row.includes('Kill'), row);
      await shot(bobPage, '07-read-only-dark');
      await bobContext.close();
    });

    await step('keyboard shortcuts and a fresh token', async () => {
      await page.locator('.pane:not([hidden]) .xterm').click();
      await page.keyboard.press('Control+Shift+Enter');
      await waitFor(page, () => window.ptyhub.tabs().length === 2 && window.ptyhub.view().subscribed);
      const second = await page.evaluate(() => window.ptyhub.activeId());
      check('Ctrl+Shift+Enter opened one more terminal in a new tab', second !== terminalId);
      await page.keyboard.press('Control+Shift+ArrowLeft');
      check('Ctrl+Shift+ArrowLeft went back to the first tab',
        (await page.evaluate(() => window.ptyhub.activeId())) === terminalId);
      await page.click(`#terminal-rows tr[data-id="${second}"] button.kill`);
      await waitFor(page, (id) => window.ptyhub.view(id).exit !== null, second);
      check('Kill ended the second terminal', true);
      await page.click(`.tab[data-id="${second}"] .tab-close`);
      check('its tab was closed', (await page.evaluate(() => window.ptyhub.tabs())).length === 1);
      const history = (await page.evaluate(() => window.ptyhub.statusHistory())).length;
      await page.click('#token-button');
      await page.fill('#signin-token', token('alice', 'terminal:create terminal:read terminal:write git:run'));
      await page.click('#signin-form button[type=submit]');
      await waitFor(page, () => !document.querySelector('#signin').open);
      check('a fresh token re-authenticated the live connection',
        (await page.evaluate(() => window.ptyhub.statusHistory())).length === history &&
        (await page.evaluate(() => window.ptyhub.status())) === 'live');
    });

    await step('exit status when the shell ends', async () => {
      await typeLine(page, 'exit 3');
      await waitFor(page, () => window.ptyhub.view().exit !== null);
      const v = await view(page);
      check('shell.exit reached the tab', v.exit.exitCode === 3, JSON.stringify(v.exit));
      await waitFor(page, () => /\[exit 3\]/.test(window.ptyhub.bufferText()));
      check('the terminal shows [exit 3]', true);
      check('the tab shows exit 3', (await page.textContent('.tab .badge.exited')).includes('exit 3'));
      await waitFor(page, (id) => document.querySelector(`#terminal-rows tr[data-id="${id}"]`)?.textContent.includes('exit 3'), terminalId);
      check('the list shows exit 3', true);
      await shot(page, '08-exited');
    });

    await step('dark theme', async () => {
      await page.emulateMedia({ colorScheme: 'dark' });
      const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      check('the page turns dark with prefers-color-scheme', bg === 'rgb(15, 18, 22)', bg);
      await shot(page, '09-dark');
    });

    await step('a second page attaching to a running vi shows the same screen at once; presence on both', async () => {
      await page.click('#create-button');
      await waitFor(page, () => window.ptyhub.tabs().length === 2 && window.ptyhub.view().subscribed);
      const vid = await page.evaluate(() => window.ptyhub.activeId());
      // Megabytes of output first: a replay of the ring would be slow; the snapshot is the screen alone.
      await typeLine(page, 'seq 1 300000; vi -u NONE -n /etc/services');
      await waitFor(page, (i) => {
        const s = window.ptyhub.screenLines(i);
        return s.type === 'alternate' && s.lines.some((l) => l.includes('"/etc/services"'));
      }, vid, 90000);
      const aliceScreen = await stableScreen(page, vid);
      check('alice\'s page shows vi on the alternate screen', aliceScreen.type === 'alternate' &&
        aliceScreen.lines[0].includes('Network services'), JSON.stringify(aliceScreen.lines.slice(0, 3)));
      const [shared] = await wsRequest(daemon.port, alice,
        [{ type: 'shell.share', data: { terminalId: vid, user: 'bob', mode: 'read' } }]);
      check('alice shared the vi terminal with bob read-only', shared.type === 'shell.shared', JSON.stringify(shared));
      const viewport = page.viewportSize();
      const bobContext = await browser.newContext({ viewport, colorScheme: 'dark' });
      bobContext.setDefaultTimeout(10000);
      const bobPage = await bobContext.newPage();
      bobPage.on('pageerror', (err) => pageErrors.push(String(err)));
      bobPage.on('console', cspViolation);
      try {
        await bobPage.goto(`${base}/#token=${bob}`);
        await waitFor(bobPage, () => window.ptyhub.status() === 'live');
        await waitFor(bobPage, (i) => document.querySelector(`#terminal-rows tr[data-id="${i}"] button.attach`) !== null, vid);
        const started = Date.now();
        await bobPage.click(`#terminal-rows tr[data-id="${vid}"] button.attach`);
        const want = JSON.stringify(aliceScreen);
        await waitFor(bobPage, ([i, w]) => {
          const s = window.ptyhub.screenLines(i);
          return s !== null && JSON.stringify(s) === w;
        }, [vid, want], 10000).catch(() => {});
        const elapsed = Date.now() - started;
        const bobScreen = await screen(bobPage, vid);
        const differ = aliceScreen.lines.map((l, i) => (l === bobScreen.lines[i] ? null : `${i}: ${JSON.stringify(l)} vs ${JSON.stringify(bobScreen.lines[i])}`)).filter(Boolean);
        check(`bob's page shows the same ${aliceScreen.rows} lines as alice's (xterm buffers compared)`,
          bobScreen.rows === aliceScreen.rows && bobScreen.cols === aliceScreen.cols && differ.length === 0,
          `${bobScreen.cols}x${bobScreen.rows} vs ${aliceScreen.cols}x${aliceScreen.rows}; ${differ.slice(0, 5).join('; ')}`);
        check('the same cursor and the alternate screen', bobScreen.cursorX === aliceScreen.cursorX &&
          bobScreen.cursorY === aliceScreen.cursorY && bobScreen.type === 'alternate',
          JSON.stringify({ bob: { ...bobScreen, lines: undefined }, alice: { ...aliceScreen, lines: undefined } }));
        const bobView = await view(bobPage, vid);
        check('bob\'s view started from a snapshot and replayed nothing', bobView.snapshot !== null && bobView.snapshot !== undefined &&
          bobView.stats.snapshots === 1 && bobView.stats.replayed === 0, JSON.stringify({ snapshot: bobView.snapshot, stats: bobView.stats }));
        check('nothing was typed or answered by bob\'s emulator', bobView.stats.droppedInput === 0, JSON.stringify(bobView.stats));
        console.log(`  bob's screen showed ${elapsed} ms after the attach (reported, not asserted)`);
        await shot(bobPage, '10-snapshot-joiner');

        const bobViewers = (await view(bobPage, vid)).viewers;
        if (check('bob\'s subscription carries the viewers (presence)', Array.isArray(bobViewers), JSON.stringify(bobViewers))) {
          const both = (i) => {
            const names = window.ptyhub.tabViewers(i).map((v) => `${v.user}:${v.role}`).sort().join(' ');
            return names === 'alice:owner bob:read';
          };
          await waitFor(page, both, vid).catch(() => {});
          await waitFor(bobPage, both, vid).catch(() => {});
          const onAlice = await page.evaluate((i) => window.ptyhub.tabViewers(i), vid);
          const onBob = await bobPage.evaluate((i) => window.ptyhub.tabViewers(i), vid);
          const label = (list) => list.map((v) => `${v.user}:${v.role}`).sort().join(' ');
          check('alice\'s tab shows alice (owner) and bob (read)', label(onAlice) === 'alice:owner bob:read', JSON.stringify(onAlice));
          check('bob\'s tab shows alice (owner) and bob (read)', label(onBob) === 'alice:owner bob:read', JSON.stringify(onBob));
          const writer = onBob.find((v) => v.user === 'alice');
          const reader = onBob.find((v) => v.user === 'bob');
          check('who may type is marked (✎ for alice, not for bob)', writer && writer.text.includes('✎') && reader &&
            !reader.text.includes('✎'), JSON.stringify(onBob));
          await shot(page, '11-presence');
        }
      } finally {
        await bobContext.close();
      }
      await wsRequest(daemon.port, alice, [{ type: 'shell.kill', data: { terminalId: vid, signal: 'SIGKILL' } }]);
      await waitFor(page, (i) => window.ptyhub.view(i).exit !== null, vid);
      await page.click(`.tab[data-id="${vid}"] .tab-close`);
    });

    await step('a screen set up before the ring\'s start: a joiner still sees vi (8 KiB ring)', async () => {
      // vi enters the alternate screen, then redraws it until its start has left the ring: a replay of
      // the ring alone would draw vi's lines on the normal screen; the snapshot has the alternate screen.
      const small = await startDaemon(['--ring-buffer-bytes', '8192']);
      const smallBase = `http://127.0.0.1:${small.port}`;
      const contexts = [];
      const openPage = async (jwt) => {
        const context = await browser.newContext({ viewport: page.viewportSize(), colorScheme: 'light' });
        context.setDefaultTimeout(10000);
        contexts.push(context);
        const p = await context.newPage();
        p.on('pageerror', (err) => pageErrors.push(String(err)));
        p.on('console', cspViolation);
        await p.goto(`${smallBase}/#token=${jwt}`);
        await waitFor(p, () => window.ptyhub.status() === 'live');
        return p;
      };
      try {
        const first = await openPage(alice);
        await first.click('#create-button');
        await waitFor(first, () => window.ptyhub.tabs().length === 1 && window.ptyhub.view().subscribed);
        const vid = await first.evaluate(() => window.ptyhub.activeId());
        await typeLine(first, 'vi -u NONE -n /etc/services');
        await waitFor(first, (i) => {
          const s = window.ptyhub.screenLines(i);
          return s.type === 'alternate' && s.lines.some((l) => l.includes('"/etc/services"'));
        }, vid, 20000);
        // G and gg in turn, each waited for (vi draws nothing while keys are pending): a full screen each.
        const topLine = () => first.evaluate((i) => window.ptyhub.screenLines(i).lines[0], vid);
        const outputOf = async () => (await first.evaluate((i) => window.ptyhub.view(i), vid)).next;
        const start = await outputOf();
        for (let n = 0; n < 40 && (await outputOf()) - start < 3 * 8192; n++) {
          const before = await topLine();
          await first.keyboard.type(n % 2 === 0 ? 'G' : 'gg');
          await waitFor(first, ([i, b]) => window.ptyhub.screenLines(i).lines[0] !== b, [vid, before]);
        }
        check('vi drew more than three rings of output after entering the alternate screen',
          (await outputOf()) - start >= 3 * 8192, `${(await outputOf()) - start} bytes`);
        const want = await stableScreen(first, vid);
        const second = await openPage(alice);
        await waitFor(second, (i) => document.querySelector(`#terminal-rows tr[data-id="${i}"] button.attach`) !== null, vid);
        await second.click(`#terminal-rows tr[data-id="${vid}"] button.attach`);
        await waitFor(second, ([i, w]) => {
          const s = window.ptyhub.screenLines(i);
          return s !== null && JSON.stringify(s) === w;
        }, [vid, JSON.stringify(want)], 10000).catch(() => {});
        const got = await screen(second, vid);
        const differ = want.lines.map((l, i) => (l === got.lines[i] ? null : `${i}: ${JSON.stringify(l)} vs ${JSON.stringify(got.lines[i])}`)).filter(Boolean);
        check('the joiner is on the alternate screen, as the first page', got.type === 'alternate', got.type);
        check('the joiner\'s visible lines and cursor are the first page\'s',
          differ.length === 0 && got.cursorX === want.cursorX && got.cursorY === want.cursorY,
          `${differ.slice(0, 4).join('; ')}; cursor ${got.cursorX},${got.cursorY} vs ${want.cursorX},${want.cursorY}`);
        await shot(second, '12-snapshot-small-ring');
        await wsRequest(small.port, alice, [{ type: 'shell.kill', data: { terminalId: vid, signal: 'SIGKILL' } }]);
      } finally {
        for (const context of contexts) await context.close();
        small.child.kill('SIGTERM');
        await new Promise((r) => small.child.once('exit', r));
      }
    });

    check('no JavaScript error and no CSP violation on the pages', pageErrors.length === 0, pageErrors.join('\n'));
  } finally {
    await browser.close();
    daemon.child.kill('SIGTERM');
    await new Promise((r) => daemon.child.once('exit', r));
    if (results.failures.length) console.log(`--- ptyhubd log ---\n${daemon.log().slice(-4000)}`);
  }
}

try {
  await main();
} catch (err) {
  check('the test ran', false, err.stack || String(err));
} finally {
  rmSync(work, { recursive: true, force: true });
}
finish();
