// Which identity this browser last held here: "user", "anonymous", or none.
// The login and anonymous cookies are HttpOnly, so the page cannot see them; and
// the server answers /api/auth/me and /api/sessions with 401 when there is no
// identity at all. Remembering what we last learned lets a first visit ask
// nothing the server would refuse. It is only a hint: the server still decides,
// and a 401 corrects it.

const KEY = "threadline.identity";

export function knownIdentity() {
  try {
    return localStorage.getItem(KEY);
  } catch {
    return "unknown"; // storage blocked: ask the server every time
  }
}

export function rememberIdentity(kind) {
  try {
    if (kind) localStorage.setItem(KEY, kind);
    else localStorage.removeItem(KEY);
  } catch {
    // storage blocked: nothing to remember, and knownIdentity() says so
  }
}
