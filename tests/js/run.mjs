// Tests of @ptyhub/client (clients/js) against the real ptyhubd: resumption after a forced close and
// after a live upgrade (exactly the bytes written, offsets contiguous), flow control from the
// consumer's side (the daemon stops reading the PTY and queues nothing), token renewal before expiry
// (the open connection survives `exp`, the reconnection presents the new token), a git operation, and
// the xterm.js binding (with a stand-in Terminal): no answer to a replayed query is sent as input;
// snapshots (a first attach gets `shell.snapshot`, then output contiguous from its offset; a resume
// after a drop uses `since`; after 5 MB of output then vi, vi's screen at once; the binding resets the
// emulator and writes the snapshot at its size) and presence (`viewers`).
//
//   node tests/js/run.mjs PTYHUBD
//
// Exits 0 when every check passed, 1 otherwise. No sleep synchronises anything: every wait is bounded
// and on a condition (support.mjs `until`/`settled`).
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PtyhubClient } from '../../clients/js/src/index.js';
import { bindXterm } from '../../clients/js/src/xterm.js';
import { FakeTerminal } from './fake_xterm.mjs';
import { check, finish, results, step } from '../web/checks.mjs';
import { TrackedWebSocket, bareRepository, metric, settled, until, within, workspace } from './support.mjs';

const ptyhubd = process.argv[2];
if (!ptyhubd) {
  console.error('usage: run.mjs PTYHUBD');
  process.exit(2);
}
const ws = workspace(ptyhubd);
const kRing = 1024 * 1024; // the daemon's default ring_buffer_bytes (docs/protocol.md §4)

// `count` numbered lines, a short pause every ten, then `end`: about count/500 s of output. A plain
// `sh -c`, which a stray SIGTERM would end (a live upgrade must not send one).
function producer(count) {
  return ['/bin/sh', '-c',
    `i=0; while [ $i -lt ${count} ]; do i=$((i+1)); echo line-$i; case $i in *0) sleep 0.02;; esac; done; echo end`];
}

// What the PTY turns producer(count)'s output into (onlcr: "\n" → "\r\n").
function expected(count) {
  let text = '';
  for (let i = 1; i <= count; i++) text += `line-${i}\r\n`;
  return `${text}end\r\n`;
}

// A client of the test daemon with a recording WebSocket.
function client(daemon, token, options = {}) {
  return new PtyhubClient({ url: daemon.url, token, WebSocket: TrackedWebSocket, ...options });
}

// Iterates `attachment` to its end (the exit), calling `onChunk(chunk, text)` after each; returns
// {chunks, text}. Fails when it does not end within `timeoutMs`.
async function collect(attachment, onChunk = () => {}, timeoutMs = 30000) {
  const chunks = [];
  let text = '';
  const timer = setTimeout(() => attachment.close(new Error(`the output did not end within ${timeoutMs} ms`)), timeoutMs);
  try {
    for await (const chunk of attachment) {
      chunks.push(chunk);
      if (chunk.type === 'output') text += chunk.data;
      onChunk(chunk, text);
    }
  } finally {
    clearTimeout(timer);
  }
  return { chunks, text };
}

// Checks that the output chunks cover [0, end) one after the other, without gap.
function checkContiguous(label, chunks, end) {
  let at = 0;
  const faults = [];
  for (const c of chunks) {
    if (c.type !== 'output') faults.push(`gap ${c.from}-${c.to}`);
    else if (c.offset !== at) faults.push(`chunk at ${c.offset}, expected ${at}`);
    else at = c.next;
  }
  check(`${label}: chunks follow each other from offset 0 to ${end}`, faults.length === 0 && at === end,
    `${faults.slice(0, 5).join('; ')} (ended at ${at})`);
}

// The text of a snapshot or screen update: escape sequences (CSI, OSC, DCS, two-byte ESC) and
// control characters removed.
function visibleText(data) {
  return data
    .replace(/\x1b\[[0-?]*[ -\/]*[@-~]/g, '')
    .replace(/\x1b[\]P_^][^\x07\x1b]*(\x07|\x1b\\)/g, '')
    .replace(/\x1b[ -\/]*[0-~]/g, '')
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
}

// The `subscribe` requests sent for `channel` on the sockets opened from index `from` on.
function subscribeFrames(from, channel) {
  return TrackedWebSocket.sockets.slice(from).flatMap((socket) => socket.sentFrames.map((f) => JSON.parse(f)))
    .filter((m) => m.type === 'subscribe' && m.data.channel === channel);
}

// Checks that `text` is exactly expected(count): every line once, in order.
function checkExact(label, text, count) {
  const want = expected(count);
  if (text === want) return check(`${label}: every byte arrived exactly once`, true);
  const seen = new Map();
  for (const line of text.split('\r\n')) seen.set(line, (seen.get(line) || 0) + 1);
  const missing = [];
  const doubled = [];
  for (let i = 1; i <= count; i++) {
    const n = seen.get(`line-${i}`) || 0;
    if (n === 0) missing.push(i);
    if (n > 1) doubled.push(i);
  }
  return check(`${label}: every byte arrived exactly once`, false,
    `${text.length} chars instead of ${want.length}; missing ${missing.slice(0, 10)}; doubled ${doubled.slice(0, 10)}`);
}

async function main() {
  bareRepository(ws);
  // jwt_leeway 0: a token is refused from its `exp` on, so the renewal test need not wait 30 s more.
  const daemon = await ws.daemon(['--jwt-leeway', '0']);
  const alice = ws.token('alice');
  const opened = [];
  try {
    await step('a forced close: the attachment resumes from its offset, exactly once', async () => {
      const count = 1500;
      const c = client(daemon, alice, { backoffMs: [300] });
      opened.push(c);
      const reconnects = [];
      c.on('reconnecting', (r) => reconnects.push(r));
      await c.ready();
      const t = await c.createTerminal({ command: producer(count) });
      let killed = null;
      const { chunks, text } = await collect(t, (chunk, sofar) => {
        if (!killed && sofar.includes('line-200\r\n')) {
          killed = TrackedWebSocket.current();
          killed.terminate(); // the TCP connection ends without a close frame (1006)
        }
      });
      check('the socket was killed mid-stream', killed !== null);
      check('the client reconnected after a delay (backoff, not 1012)', reconnects.length >= 1 && reconnects[0].delayMs > 0,
        JSON.stringify(reconnects));
      check('the attachment subscribed again', t.stats.resumptions >= 1, JSON.stringify(t.stats));
      check('output written while away came as replay', chunks.some((ch) => ch.replayed), JSON.stringify(t.stats));
      checkExact('after a forced close', text, count);
      checkContiguous('after a forced close', chunks, t.exit.outputBytes);
      check('no overlap dropped, no hole, no gap', t.stats.overlaps === 0 && t.stats.holes === 0 && t.stats.gaps === 0,
        JSON.stringify(t.stats));
      check('the exit carries the status', t.exit.exitCode === 0, JSON.stringify(t.exit));
      c.close();
    });

    await step('a consumer that stops taking output pauses the terminal; the daemon queues nothing', async () => {
      const c = client(daemon, alice);
      opened.push(c);
      await c.ready();
      const high = 128 * 1024;
      // Read before the terminal exists: its PTY may also be held back before the consumer stops (a writer
      // near the ring's edge, §6), and then the consumer's pause is no new pause of the PTY.
      const pauses = await metric(daemon, 'ptyhub_pty_read_pauses_total');
      const t = await c.createTerminal({ command: ['yes', 'ptyhub flow control'], highWaterMark: high, lowWaterMark: 32 * 1024 });
      let release;
      const gate = new Promise((r) => (release = r));
      let taken = 0;
      let at = 0;
      const faults = [];
      const consumer = (async () => {
        for await (const chunk of t) {
          if (chunk.type !== 'output' || chunk.offset !== at) faults.push(JSON.stringify({ ...chunk, data: undefined }));
          at = chunk.next ?? at;
          taken += chunk.next - chunk.offset;
          if (taken >= 64 * 1024 && taken - (chunk.next - chunk.offset) < 64 * 1024) await gate; // stops pulling
        }
      })();
      await until('the attachment to pause itself', () => t.paused);
      check('the attachment paused itself once its queue passed the high-water mark', t.paused && t.stats.pauses === 1,
        JSON.stringify(t.stats));
      const id = t.terminalId;
      const outputBytes = async () => (await c.list()).find((x) => x.id === id).outputBytes;
      // The producer is held back: the daemon's count of bytes read and what the client received stop.
      const still = await settled('the PTY and the stream to stand still', async () => `${await outputBytes()} ${t.next}`, 500);
      const [read, received] = still.split(' ').map(Number);
      check('the daemon stopped reading the PTY (pauses counted in /metrics)',
        (await metric(daemon, 'ptyhub_pty_read_pauses_total')) > pauses);
      check('the producer stopped within the ring of what the client received',
        read - received <= kRing + 256 * 1024, `read ${read}, received ${received}`);
      const queued = await metric(daemon, 'ptyhub_outbound_queue_bytes');
      check('the daemon queues (almost) nothing for the paused client', queued < 64 * 1024, `${queued} bytes queued`);
      release();
      await until('the output to flow again', () => t.next > received + 4 * kRing);
      check('taking output again resumed the terminal', !t.paused && t.stats.resumes >= 1, JSON.stringify(t.stats));
      await t.kill('SIGKILL');
      await until('the flood to end', () => t.exit, 15000);
      await consumer;
      check('every byte the consumer took followed the previous one (no gap)', faults.length === 0 && t.stats.gaps === 0,
        faults.slice(0, 3).join(' '));
      check('the attachment saw no hole or overlap', t.stats.holes === 0 && t.stats.overlaps === 0, JSON.stringify(t.stats));
      c.close();
    });

    await step('a git clone through the client: output, progress and completion', async () => {
      const c = client(daemon, alice);
      opened.push(c);
      await c.ready();
      const op = await c.startGit({ operation: 'clone', repo: 'copy', url: `file://${join(ws.repos, 'origin.git')}` });
      let output = '';
      op.on('output', (chunk) => (output += chunk.data));
      const done = await within('the clone to complete', op.done, 30000);
      check('the clone succeeded', done.status === 'succeeded' && done.exitCode === 0, JSON.stringify(done));
      await until('the clone\'s exit', () => op.attachment.exit);
      check('its output came through the attachment', output.includes('Cloning into'), output);
      c.close();
    });

    await step('the xterm binding: replayed queries are not answered; keys and sizes are sent', async () => {
      const c = client(daemon, alice);
      opened.push(c);
      await c.ready();
      // The shell prints a cursor-position query, then echoes every line typed (the PTY echoes too).
      const created = await c.createTerminal({ command: ['/bin/sh', '-c', "printf 'query\\033[6n\\n'; exec cat"] });
      let seen = '';
      created.on('output', (chunk) => (seen += chunk.data));
      await until('the query', () => seen.includes('\x1b[6n'));
      await created.detach();
      const term = new FakeTerminal();
      const t = c.attach(created.terminalId, { since: 0 });
      const binding = bindXterm(term, t);
      const resized = new Promise((r) => t.once('resized', r));
      await until('the replayed query to be written', () => term.written.includes('\x1b[6n') && !binding.replaying);
      check('the answer xterm gave while parsing the replay was dropped', binding.stats.droppedInput === 1,
        JSON.stringify(binding.stats));
      term.type('typed-live\r');
      await until('the typed line to come back', () => /typed-live\r\n[^]*typed-live/.test(term.written));
      check('keys typed after the replay reached the terminal', true);
      check('the replayed query\'s answer never did (no echo of it)', !term.written.includes('1;1R'), JSON.stringify(term.written));
      term.resize(100, 30);
      const size = await within('shell.resized', resized, 10000);
      check('a size change of the emulator resized the terminal', size.cols === 100 && size.rows === 30, JSON.stringify(size));
      binding.dispose();
      await t.kill('SIGKILL');
      c.close();
    });

    await step('attaching to a running terminal: shell.snapshot, then output contiguous from its offset; a drop resumes with since', async () => {
      const count = 1500;
      const owner = client(daemon, alice);
      opened.push(owner);
      await owner.ready();
      const created = await owner.createTerminal({ command: producer(count), cols: 100, rows: 30 });
      let ownerText = '';
      created.on('output', (chunk) => (ownerText += chunk.data));
      await until('line-300 at the owner', () => ownerText.includes('line-300\r\n'));
      const firstSocket = TrackedWebSocket.sockets.length;
      const c = client(daemon, alice, { backoffMs: [300] });
      opened.push(c);
      await c.ready();
      const t = c.attach(created.terminalId);
      let dropped = null;
      let nextAtDrop = null;
      const { chunks, text } = await collect(t, (chunk) => {
        if (!dropped && chunk.type === 'output' && t.stats.chunks >= 3) {
          nextAtDrop = t.next;
          dropped = TrackedWebSocket.current();
          dropped.terminate();
        }
      });
      const [first, ...rest] = chunks;
      check('the first item is the snapshot', first && first.type === 'snapshot', JSON.stringify(first && { ...first, data: undefined }));
      if (!first || first.type !== 'snapshot') return;
      check('it describes the screen: offset, size, exact', first.offset > 0 && first.cols === 100 && first.rows === 30 &&
        first.exact === true && first.reason === undefined, JSON.stringify({ ...first, data: undefined }));
      check('its data starts with RIS (ESC c)', first.data.startsWith('\x1bc'), JSON.stringify(first.data.slice(0, 20)));
      check('attachment.snapshot and stats tell of it', t.snapshot && t.snapshot.offset === first.offset && t.stats.snapshots === 1,
        JSON.stringify({ snapshot: t.snapshot, stats: t.stats }));
      let at = first.offset;
      const faults = [];
      for (const ch of rest) {
        if (ch.type !== 'output') faults.push(`${ch.type} ${ch.from}-${ch.to}`);
        else if (ch.offset !== at) faults.push(`chunk at ${ch.offset}, expected ${at}`);
        else at = ch.next;
      }
      check('output follows from exactly the snapshot\'s offset to the end, no hole, no overlap',
        faults.length === 0 && at === t.exit.outputBytes && t.stats.holes === 0 && t.stats.overlaps === 0,
        `${faults.slice(0, 5).join('; ')} (ended at ${at} of ${t.exit.outputBytes})`);
      const full = expected(count);
      check('the output after the snapshot is exactly the rest of the stream', full.endsWith(text) &&
        full.length - text.length === first.offset, `${text.length} chars after offset ${first.offset}`);
      const before = full.slice(0, first.offset).split('\r\n').filter((l) => l).pop();
      const lines = visibleText(first.data).split(/\s+/).filter((w) => /^line-\d+$/.test(w));
      check(`the snapshot's screen ends with the line before its offset (${before})`, lines[lines.length - 1] === before,
        lines.slice(-3).join(' '));
      const frames = subscribeFrames(firstSocket, created.channel || `shell:terminal:${created.terminalId}`);
      check('the first subscribe asked for a snapshot, without since',
        frames[0] && frames[0].data.snapshot === true && frames[0].data.since === undefined, JSON.stringify(frames[0]));
      check('the connection was dropped after the snapshot', dropped !== null);
      check('the resubscription resumed with since = next, without a snapshot',
        frames.length >= 2 && frames[1].data.since === nextAtDrop && frames[1].data.snapshot === undefined,
        JSON.stringify(frames.slice(1)));
      check('no second snapshot came', t.stats.snapshots === 1 && t.stats.resumptions >= 1, JSON.stringify(t.stats));
      c.close();
      owner.close();
    });

    await step('after 5 MB of output then vi, a new attach gets vi\'s screen at once', async () => {
      const owner = client(daemon, alice);
      opened.push(owner);
      await owner.ready();
      const cols = 160;
      const rows = 30;
      const created = await owner.createTerminal({
        command: ['/bin/sh', '-c', 'seq 1 750000; exec vi -u NONE -n /etc/services'], cols, rows,
      });
      let tail = '';
      created.on('output', (chunk) => (tail = (tail + chunk.data).slice(-65536)));
      await until('vi to show /etc/services', () => tail.includes('/etc/services'), 60000);
      const end = await settled('vi\'s output to stop', () => created.next, 300, 30000);
      check('more than 5 MB of output came before vi', end > 5 * 1024 * 1024, `${end} bytes`);
      const c = client(daemon, alice);
      opened.push(c);
      await c.ready();
      const started = Date.now();
      const t = c.attach(created.terminalId);
      const iterator = t[Symbol.asyncIterator]();
      const { value: first } = await within('the first item', iterator.next(), 10000);
      const elapsed = Date.now() - started;
      check('the first item is the snapshot', first && first.type === 'snapshot', JSON.stringify(first && { ...first, data: undefined }));
      if (!first || first.type !== 'snapshot') return;
      // Small, not a replay of megabytes (its time is reported, not asserted: the benchmark measures it).
      check('it is small', first.data.length < 512 * 1024, `${elapsed} ms, ${first.data.length} chars`);
      check('its offset is the end of the output: nothing to replay', first.offset === end, `${first.offset} vs ${end}`);
      check('exact is false with a reason after the model skipped output, or true',
        first.exact === true || ['output_skipped', 'history_before_ring'].includes(first.reason),
        JSON.stringify({ exact: first.exact, reason: first.reason }));
      const squash = (text) => text.replace(/\s+/g, '');
      const fileTop = readFileSync('/etc/services', 'utf8').split('\n').slice(0, rows - 2).join('\n');
      check(`the snapshot shows vi's screen: the first ${rows - 2} lines of /etc/services`,
        squash(visibleText(first.data)).includes(squash(fileTop)), JSON.stringify(first.data.slice(-400)));
      check('and vi\'s status line', visibleText(first.data).includes('"/etc/services"'));
      check('vi runs on the alternate screen in it (ESC [ ? 1049 h)', first.data.includes('\x1b[?1049h'));
      await iterator.return();
      await created.kill('SIGKILL');
      c.close();
      owner.close();
    });

    await step('the xterm binding with a snapshot: reset, the snapshot\'s size, no query answered', async () => {
      const c = client(daemon, alice);
      opened.push(c);
      await c.ready();
      const created = await c.createTerminal({
        command: ['/bin/sh', '-c', "printf 'query\\033[6n\\n'; printf 'before-join\\n'; exec cat"], cols: 100, rows: 30,
      });
      let seen = '';
      created.on('output', (chunk) => (seen += chunk.data));
      await until('the output before the join', () => seen.includes('before-join'));
      await created.detach();
      const firstSocket = TrackedWebSocket.sockets.length - 1;
      const sentBefore = TrackedWebSocket.current().sentFrames.length;
      const term = new FakeTerminal();
      term.written = 'garbage of another terminal';
      const t = c.attach(created.terminalId);
      let snapshotSeen = null;
      const binding = bindXterm(term, t, { onSnapshot: (s) => (snapshotSeen = s) });
      await until('the snapshot to be parsed', () => snapshotSeen && !binding.replaying);
      check('the emulator was reset and given the snapshot', term.resets === 1 && term.written.startsWith('\x1bc') &&
        term.written.includes('before-join'), JSON.stringify(term.written.slice(0, 80)));
      check('the emulator took the snapshot\'s size (100x30)', term.cols === 100 && term.rows === 30, `${term.cols}x${term.rows}`);
      check('no query was written, none answered', !term.written.includes('\x1b[6n') && binding.stats.droppedInput === 0 &&
        binding.stats.snapshots === 1, JSON.stringify(binding.stats));
      const sent = TrackedWebSocket.sockets.slice(firstSocket).flatMap((s) => s.sentFrames).slice(sentBefore).map((f) => JSON.parse(f));
      check('that size change was not sent to the daemon', !sent.some((m) => m.type === 'shell.resize'),
        sent.map((m) => m.type).join(' '));
      term.type('typed-live\r');
      await until('the typed line to come back', () => /typed-live\r\n[^]*typed-live/.test(term.written));
      check('keys typed after the snapshot reached the terminal', true);
      binding.dispose();
      await t.kill('SIGKILL');
      c.close();
    });

    await step('a daemon with snapshots off: the attachment asks again without one and gets the replay', async () => {
      const off = await ws.daemon(['--snapshots', 'off']);
      try {
        const c = client(off, alice);
        opened.push(c);
        await c.ready();
        const created = await c.createTerminal({ command: ['/bin/sh', '-c', "printf 'replayed-line\\n'; exec cat"] });
        let seen = '';
        created.on('output', (chunk) => (seen += chunk.data));
        await until('the line', () => seen.includes('replayed-line'));
        await created.detach();
        const firstSocket = TrackedWebSocket.sockets.length - 1;
        const t = c.attach(created.terminalId);
        const iterator = t[Symbol.asyncIterator]();
        const { value: first } = await within('the first item', iterator.next(), 10000);
        check('the first item is the replayed output from 0', first && first.type === 'output' && first.offset === 0 &&
          first.replayed === true && first.data.includes('replayed-line'), JSON.stringify(first));
        const frames = subscribeFrames(firstSocket, `shell:terminal:${created.terminalId}`);
        check('a snapshot was asked for, refused, and the subscription made again without one',
          frames.length === 2 && frames[0].data.snapshot === true && frames[1].data.snapshot === undefined &&
          frames[1].data.since === undefined, JSON.stringify(frames));
        check('no error was reported and no snapshot counted', t.snapshot === null && t.stats.snapshots === 0 && !t.closed,
          JSON.stringify(t.stats));
        await iterator.return();
        await t.kill('SIGKILL');
        c.close();
      } finally {
        off.child.kill('SIGTERM');
        await new Promise((r) => off.child.once('exit', r));
      }
    });

    await step('presence: both users are in viewers, and a departure is told', async () => {
      const c = client(daemon, alice);
      const b = client(daemon, ws.token('bob', 'terminal:read terminal:write'));
      opened.push(c, b);
      await c.ready();
      await b.ready();
      const created = await c.createTerminal({ command: ['/bin/sh', '-c', 'exec cat'] });
      await created.share('bob', 'read');
      const watched = created; // alice's attachment, made by shell.create
      const bt = b.attach(created.terminalId);
      const ready = await within('bob\'s subscription', bt.ready, 10000);
      if (!check('the subscribed reply carries viewers', Array.isArray(ready.viewers), JSON.stringify(ready))) {
        await created.kill('SIGKILL');
        return;
      }
      const names = (list) => (list || []).map((v) => `${v.user}:${v.role}`).sort().join(' ');
      await until('alice to see bob', () => names(watched.viewers) === 'alice:owner bob:read', 10000).catch(() => {});
      check('alice\'s attachment lists alice (owner) and bob (read)', names(watched.viewers) === 'alice:owner bob:read',
        JSON.stringify(watched.viewers));
      check('bob\'s subscribed reply lists both', names(bt.viewers) === 'alice:owner bob:read', JSON.stringify(bt.viewers));
      const entry = (bt.viewers || []).find((v) => v.user === 'bob') || {};
      check('a viewer has since (ISO 8601) and connections', !Number.isNaN(Date.parse(entry.since)) && entry.connections === 1,
        JSON.stringify(entry));
      const second = client(daemon, alice);
      opened.push(second);
      await second.ready();
      const again = second.attach(created.terminalId);
      await within('alice\'s second subscription', again.ready, 10000);
      const alicesEntry = (list) => (list || []).find((v) => v.user === 'alice') || {};
      await until('two connections of alice', () => alicesEntry(bt.viewers).connections === 2, 10000).catch(() => {});
      check('alice on a second connection: one entry, connections 2 (told to bob by shell.viewers)',
        alicesEntry(bt.viewers).connections === 2 && bt.viewers.length === 2, JSON.stringify(bt.viewers));
      second.close();
      await until('one connection of alice again', () => alicesEntry(bt.viewers).connections === 1, 10000).catch(() => {});
      check('her second connection closed: connections 1 again', alicesEntry(bt.viewers).connections === 1,
        JSON.stringify(bt.viewers));
      const left = new Promise((r) => {
        const off = watched.on('viewers', (v) => {
          if (names(v) === 'alice:owner') {
            off();
            r(v);
          }
        });
      });
      await bt.detach();
      await within('shell.viewers without bob', left, 10000);
      check('when bob detached, alice got shell.viewers without him', names(watched.viewers) === 'alice:owner',
        JSON.stringify(watched.viewers));
      await created.kill('SIGKILL');
    });

    await step('a live upgrade (1012): the client reconnects at once and resumes exactly once', async () => {
      const count = 1000;
      const c = client(daemon, alice);
      opened.push(c);
      const reconnects = [];
      const closes = [];
      c.on('reconnecting', (r) => reconnects.push({ ...r, at: Date.now() }));
      c.on('close', (e) => closes.push({ ...e, at: Date.now() }));
      await c.ready();
      const before = TrackedWebSocket.sockets.length;
      const t = await c.createTerminal({ command: producer(count) });
      let signalled = false;
      const { chunks, text } = await collect(t, (chunk, sofar) => {
        if (!signalled && sofar.includes('line-100\r\n')) {
          signalled = true;
          process.kill(daemon.child.pid, 'SIGUSR2');
        }
      });
      check('the daemon closed the client with 1012', closes.some((e) => e.code === 1012), JSON.stringify(closes));
      const first = reconnects[0] || {};
      check('the reconnection was scheduled at once (no backoff)', first.code === 1012 && first.delayMs === 0,
        JSON.stringify(reconnects));
      const next = TrackedWebSocket.sockets[before];
      check('a new socket was opened right after the close',
        next !== undefined && TrackedWebSocket.sockets.length > before, `${TrackedWebSocket.sockets.length} sockets`);
      checkExact('across the live upgrade', text, count);
      checkContiguous('across the live upgrade', chunks, t.exit.outputBytes);
      check('the attachment subscribed again', t.stats.resumptions >= 1, JSON.stringify(t.stats));
      c.close();
    });

    await step('a short-lived token is renewed before it expires; the reconnection presents the new one', async () => {
      const ttl = 4;
      const short = ws.token('alice', 'terminal:create terminal:read terminal:write', ttl);
      const shortExp = JSON.parse(Buffer.from(short.split('.')[1], 'base64url')).exp * 1000;
      let fresh = null;
      const calls = [];
      const c = client(daemon, short, {
        backoffMs: [300],
        refreshToken: async () => {
          calls.push(Date.now());
          fresh = ws.token('alice', 'terminal:create terminal:read terminal:write terminal:read', 3600);
          return fresh;
        },
      });
      opened.push(c);
      const closes = [];
      c.on('close', (e) => closes.push(e));
      await c.ready();
      await until('refreshToken to be called', () => calls.length > 0, ttl * 1000 + 2000);
      check('refreshToken was called before the token expired', calls[0] < shortExp,
        `called ${shortExp - calls[0]} ms before exp`);
      await until('the old token\'s expiry to pass', () => Date.now() > shortExp + 1500, ttl * 1000 + 5000);
      check('the connection outlived the old token (no 4401 close)', closes.length === 0 && c.live, JSON.stringify(closes));
      const pong = await c.request('ping');
      check('requests still work after the old expiry', pong.type === 'pong');
      check('auth.ok carries the new expiry', Date.parse(c.auth.expiresAt) > shortExp + 60000, c.auth.expiresAt);
      const sockets = TrackedWebSocket.sockets.length;
      TrackedWebSocket.current().terminate();
      await until('the client to reconnect', () => TrackedWebSocket.sockets.length > sockets && c.live);
      const auth = JSON.parse(TrackedWebSocket.sockets[sockets].sentFrames[0]);
      check('the reconnection authenticated with the renewed token', auth.type === 'auth' && auth.data.token === fresh,
        `sent ${auth.type} with ${auth.data.token === short ? 'the expired token' : 'another token'}`);
      check('and the daemon accepted it', c.auth.user === 'alice');
      c.close();
    });
  } finally {
    for (const c of opened) c.close();
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
  rmSync(ws.work, { recursive: true, force: true });
}
finish();
