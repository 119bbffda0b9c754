// The sign-in token: taken from the URL fragment (`#token=…`, then removed from the address bar) or
// from the sign-in form, and kept in sessionStorage for this tab only.
const kKey = 'ptyhub.token';

// Moves a fragment token to sessionStorage and returns the stored token (or null).
export function takeToken() {
  const match = location.hash.match(/(?:^#|&)token=([^&]*)/);
  if (match) {
    const token = decodeURIComponent(match[1]).trim();
    if (token) sessionStorage.setItem(kKey, token);
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(kKey);
}

export function storeToken(token) {
  sessionStorage.setItem(kKey, token);
}

export function clearToken() {
  sessionStorage.removeItem(kKey);
}

// The unverified claims of a JWT (only to show who and until when), or null if it is not one.
export function readClaims(token) {
  const parts = (token || '').split('.');
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const json = decodeURIComponent(
      atob(b64.padEnd(b64.length + ((4 - (b64.length % 4)) % 4), '='))
        .split('')
        .map((c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0'))
        .join(''),
    );
    const claims = JSON.parse(json);
    return typeof claims === 'object' && claims !== null ? claims : null;
  } catch {
    return null;
  }
}
