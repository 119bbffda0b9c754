// The sign-in token: taken from the URL fragment (`#token=…`, then removed from the address bar) or
// from the sign-in form, and kept in sessionStorage for this tab only. (Its claims are read with
// @ptyhub/client's readClaims.)
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
