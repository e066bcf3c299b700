// Which identity this browser holds here: "user", "anonymous", or none, as
// /api/auth/identity last said (the cookies are HttpOnly, so the page cannot
// see them). The sidebar asks for the session list only when there is one, so
// a first visit sends nothing the server would refuse. The server still
// decides, and a 401 corrects it.

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
