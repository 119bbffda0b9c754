// @ptyhub/client/xterm: wires an xterm.js Terminal (`@xterm/xterm`, given by the caller: this module
// imports nothing of it) to an Attachment: output → term.write, term.onData → input, term.onResize →
// resize.
//
// - Snapshot (docs/protocol.md §6, Snapshots): the emulator is reset (`term.reset()`), set to
//   the snapshot's size when it has another one (that resize is not sent to the daemon), and the
//   snapshot written: the screen appears at once, with no history to replay. What xterm emits while
//   parsing it is dropped too (a snapshot contains no query; this is a safety net). `onSnapshot` is
//   called once it is parsed, so the caller may fit the emulator to its own size then.
// - Replay: while xterm parses replayed chunks (docs/protocol.md §4: `offset < replay.to`), whatever it
//   emits — its automatic answers to queries in the history, and keys typed meanwhile — is dropped,
//   not sent as input (§4 asks clients not to answer replayed queries).
// - Flow control: characters handed to xterm and not yet parsed are counted; above `flowControl.high`
//   the terminal is paused (`shell.pause`, §6), below `flowControl.low` resumed. `flowControl` is read
//   at each chunk, so the caller may change its fields at any time.
// - `shell.gap` and `shell.exit` are written as dim notes (see `gapNote`/`exitNote`).

const dim = (text) => `\r\n\x1b[2m[${text}]\x1b[0m\r\n`;

// "exit 0", or the signal's name.
export function exitLabel(exit) {
  return exit.signal ? exit.signal : `exit ${exit.exitCode}`;
}

// Binds `term` to `attachment`. options: {flowControl?: {high, low}, input?: bool | (data) → bool,
// resize?: bool | (cols, rows) → bool, onSent?(what, detail), onError?(err, what, detail), gapNote?(gap) → text|null,
// exitNote?(exit) → text|null, onSnapshot?(snapshot)}. Returns {stats, paused, replaying, dispose()}.
export function bindXterm(term, attachment, options = {}) {
  const flow = options.flowControl || { high: 128 * 1024, low: 16 * 1024 };
  const allows = (option, ...args) => (typeof option === 'function' ? option(...args) : option !== false);
  const gapNote = options.gapNote || ((gap) => dim(`${gap.to - gap.from} bytes of output were lost`));
  const exitNote = options.exitNote || ((exit) => dim(exitLabel(exit)));
  const onSent = options.onSent || (() => {});
  const onError = options.onError || (() => {});
  const onSnapshot = options.onSnapshot || (() => {});
  const stats = { droppedInput: 0, pendingChars: 0, snapshots: 0 };
  let replayInFlight = 0;
  let disposed = false;
  let sizing = false; // the binding itself is resizing the emulator (to a snapshot's size)

  // A snapshot: a fresh emulator of the snapshot's size, then its bytes.
  const writeSnapshot = (snapshot) => {
    stats.snapshots++;
    replayInFlight++;
    term.reset();
    if (typeof term.resize === 'function' && (term.cols !== snapshot.cols || term.rows !== snapshot.rows)) {
      sizing = true;
      try {
        term.resize(snapshot.cols, snapshot.rows);
      } finally {
        sizing = false;
      }
    }
    const size = snapshot.data.length;
    stats.pendingChars += size;
    term.write(snapshot.data, () => {
      replayInFlight--;
      stats.pendingChars -= size;
      if (stats.pendingChars < flow.low) attachment.resumeHold('xterm');
      if (!disposed) onSnapshot(snapshot);
    });
  };

  // One chunk: written, counted until xterm has parsed it.
  const write = (chunk) => {
    const size = chunk.data.length;
    if (chunk.replayed) replayInFlight++;
    stats.pendingChars += size;
    if (stats.pendingChars > flow.high) attachment.pause('xterm');
    term.write(chunk.data, () => {
      if (chunk.replayed) replayInFlight--;
      stats.pendingChars -= size;
      if (stats.pendingChars < flow.low) attachment.resumeHold('xterm');
    });
  };

  const send = (what, detail, promise) => promise.then(() => onSent(what, detail), (err) => onError(err, what, detail));
  const offs = [
    attachment.on('snapshot', writeSnapshot),
    attachment.on('output', write),
    attachment.on('gap', (gap) => {
      const note = gapNote(gap);
      if (note) term.write(note);
    }),
    attachment.on('exit', (exit) => {
      const note = exitNote(exit);
      if (note) term.write(note);
    }),
  ];
  const onData = term.onData((data) => {
    if (replayInFlight > 0 || attachment.exit || !allows(options.input, data)) {
      stats.droppedInput++;
      return;
    }
    if (!attachment.client.live) return;
    send('input', data, attachment.input(data));
  });
  const onResize = term.onResize(({ cols, rows }) => {
    if (sizing || attachment.exit || !attachment.subscribed || !attachment.client.live) return;
    if (!allows(options.resize, cols, rows)) return;
    send('resize', { cols, rows }, attachment.resize(cols, rows));
  });

  return {
    stats,
    get paused() {
      return attachment.holds.has('xterm');
    },
    // Whether xterm is still parsing replayed output or a snapshot (its emissions are being dropped).
    get replaying() {
      return replayInFlight > 0;
    },
    // Unwires everything (the terminal and the attachment stay as they are).
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const off of offs) off();
      onData.dispose();
      onResize.dispose();
      attachment.resumeHold('xterm');
    },
  };
}
