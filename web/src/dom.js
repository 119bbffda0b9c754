// Small DOM helpers shared by the views: element construction without innerHTML (no markup from
// the server is ever parsed), and human-readable formatting.

// el('button', {class: 'x', onclick: f}, 'text', child…) → HTMLElement
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (value === true) node.setAttribute(key, '');
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Replaces every child of `node` with `children`.
export function replaceChildren(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

// 1234 ms → "1.2 s"; 75000 → "1 min 15 s".
export function formatDuration(ms) {
  if (ms === null || ms === undefined) return '';
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

// How a terminal ended: "exit 0", "SIGHUP", or "" while it runs.
export function exitText(t) {
  if (!t || t.state !== 'exited') return '';
  if (t.signal) return t.signal;
  return `exit ${t.exitCode}`;
}

// The short label of a terminal: its name, else its command's program.
export function terminalLabel(t) {
  if (t.name) return t.name;
  const argv0 = (t.command && t.command[0]) || t.kind || 'terminal';
  return argv0.split('/').pop();
}
