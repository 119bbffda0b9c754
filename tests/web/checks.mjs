// The checks of a browser test script: each one printed as it is made, a scenario failing as a whole
// when it throws, and a summary with the exit status at the end; and the wait for a started ptyhubd.

export const results = { passed: 0, failures: [] };

export function check(name, ok, detail = '') {
  if (ok) {
    results.passed++;
    console.log(`ok   ${name}`);
  } else {
    results.failures.push(name);
    console.log(`FAIL ${name}${detail ? `: ${detail}` : ''}`);
  }
  return ok;
}

// Runs one scenario; an exception fails it without stopping the others.
export async function step(name, body) {
  console.log(`# ${name}`);
  try {
    await body();
  } catch (err) {
    check(`${name} (ran to the end)`, false, err.stack || String(err));
  }
}

// Prints the summary and exits 0 when every check passed, 1 otherwise.
export function finish() {
  const { passed, failures } = results;
  console.log(`\n${passed} checks passed, ${failures.length} failed${failures.length ? `: ${failures.join('; ')}` : ''}`);
  process.exit(failures.length ? 1 : 0);
}

// Resolves to {child, port, log()} once the ptyhubd `child` logs the port it listens on (10 s at most).
export function listening(child) {
  let log = '';
  return new Promise((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`ptyhubd did not listen:\n${log}`)), 10000);
    const onData = (chunk) => {
      log += chunk;
      const match = log.match(/listening on 127\.0\.0\.1:(\d+)/);
      if (match) {
        clearTimeout(timer);
        resolvePort({ child, port: Number(match[1]), log: () => log });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`ptyhubd exited (${code}):\n${log}`)));
  });
}
