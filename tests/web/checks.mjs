// The checks of a browser test script: each one printed as it is made, a scenario failing as a whole
// when it throws, and a summary with the exit status at the end.

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
