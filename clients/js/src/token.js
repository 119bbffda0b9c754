// Reading a JWT's claims without verifying it (the daemon verifies; the client only needs `exp` to
// know when to ask for a fresh token, docs/protocol.md §2). Works in browsers and Node ≥ 18 (`atob`).

// The unverified claims of a JWT, or null when it is not one.
export function readClaims(token) {
  const parts = (token || '').split('.');
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
    const binary = atob(b64.padEnd(b64.length + ((4 - (b64.length % 4)) % 4), '='));
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return typeof claims === 'object' && claims !== null ? claims : null;
  } catch {
    return null;
  }
}

// The expiry of a token in milliseconds since the epoch, or null when it has no readable `exp`.
export function expiryOf(token) {
  const claims = readClaims(token);
  return claims && typeof claims.exp === 'number' ? claims.exp * 1000 : null;
}
