// REST calls. Cookies carry the login and the anonymous owner, so every call is
// same-origin. Failures are ApiErrors with the server's code, or "network" when
// the server could not be reached; js/errors.js words them for people.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function call(method, path, body) {
  const options = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let reply;
  try {
    reply = await fetch(path, options);
  } catch (error) {
    throw new ApiError(0, "network", error.message);
  }
  if (reply.status === 204) return null;
  const data = await reply.json().catch(() => ({}));
  if (!reply.ok) {
    const error = data.error || {};
    throw new ApiError(reply.status, error.code || "error", error.message || reply.statusText);
  }
  return data;
}

const enc = encodeURIComponent;

export const api = {
  me: () => call("GET", "/api/auth/me"),
  updateMe: (change) => call("PATCH", "/api/auth/me", change),
  identity: () => call("GET", "/api/auth/identity"),
  apiKeys: () => call("GET", "/api/auth/api-keys"),
  createApiKey: (name) => call("POST", "/api/auth/api-keys", { name }),
  revokeApiKey: (id) => call("DELETE", `/api/auth/api-keys/${enc(id)}`),
  register: (email, password, display_name) =>
    call("POST", "/api/auth/register", display_name ? { email, password, display_name } : { email, password }),
  login: (email, password) => call("POST", "/api/auth/login", { email, password }),
  logout: () => call("POST", "/api/auth/logout"),

  sessions: ({ q = "", archived = false, cursor = "" } = {}) => {
    const params = new URLSearchParams({ archived: String(archived), limit: "50" });
    if (q) params.set("q", q);
    if (cursor) params.set("cursor", cursor);
    return call("GET", `/api/sessions?${params}`);
  },
  createSession: (memory, model) => call("POST", "/api/sessions", model ? { memory, model } : { memory }),
  models: () => call("GET", "/api/models"),
  session: (id) => call("GET", `/api/sessions/${enc(id)}`),
  updateSession: (id, change) => call("PATCH", `/api/sessions/${enc(id)}`, change),
  deleteSession: (id, forget) => call("DELETE", `/api/sessions/${enc(id)}?forget=${forget}`),
  claim: (id) => call("POST", `/api/sessions/${enc(id)}/claim`),
  olderMessages: (id, beforeSeq) =>
    call("GET", `/api/sessions/${enc(id)}/messages?before_seq=${beforeSeq}&limit=50`),
  exportUrl: (id, format) => `/api/sessions/${enc(id)}/export?format=${format}`,

  memories: (q = "") => call("GET", `/api/memories${q ? `?q=${enc(q)}` : ""}`),
  addMemory: (kind, content) => call("POST", "/api/memories", { kind, content }),
  updateMemory: (id, content) => call("PATCH", `/api/memories/${enc(id)}`, { content }),
  deleteMemory: (id) => call("DELETE", `/api/memories/${enc(id)}`),
};
