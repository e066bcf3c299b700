// Wires the page together: who you are, which conversation is open, the socket.
import { api } from "./api.js";
import { AuthDialog, renderAccount } from "./auth.js";
import { ChatView } from "./chat.js";
import { MemoryPanel } from "./memory.js";
import { Sidebar } from "./sidebar.js";
import { ThreadSocket } from "./socket.js";

const $ = (selector) => document.querySelector(selector);
const state = { user: null, session: null, socket: null };

const chat = new ChatView({
  log: $("#log"),
  steps: $("#steps"),
  alert: $("#alert"),
  onIdle: () => sidebar.refresh().then(() => sidebar.select(state.session?.id)),
  onBusyChange: (busy) => {
    $("#stop").hidden = !busy;
  },
  resend: (id, content) => state.socket?.send({ type: "query", id, content }),
});
const sidebar = new Sidebar({
  list: $("#thread-list"),
  search: $("#thread-search"),
  archived: $("#show-archived"),
  deleteDialog: $("#delete-dialog"),
  onOpen: (id) => {
    closeSidebarOnPhone();
    location.hash = `#/s/${id}`;
  },
  onDeleted: (id) => id === state.session?.id && startNewChat(),
  onError: (text) => chat.showAlert(text),
});
const auth = new AuthDialog($("#auth-dialog"));
const memoryPanel = new MemoryPanel($("#memory-dialog"));

function setConnection(status) {
  const text = { connected: "", reconnecting: "Connection lost — reconnecting…", gone: "This conversation no longer exists.", refused: "Not allowed to open this conversation." };
  const el = $("#connection");
  el.textContent = text[status] ?? "";
  el.classList.toggle("down", status !== "connected");
}

function showNotes() {
  $("#anon-note").hidden = Boolean(state.user);
  $("#memory-off-note").hidden = !state.user || !state.session || state.session.memory;
  $("#memory-open").hidden = !state.user;
  $("#memory-toggle-label").hidden = !state.user;
}

async function openSession(id, { force = false } = {}) {
  if (!force && state.session?.id === id && state.socket) return;
  let session;
  try {
    session = await api.session(id);
  } catch (error) {
    startNewChat();
    chat.showAlert(error.status === 404 ? "That conversation does not exist (or is not yours)." : error.message);
    return;
  }
  connect(session);
}

function connect(session) {
  state.socket?.close();
  chat.reset();
  state.session = session;
  state.socket = new ThreadSocket(session.id, {
    onFrame: (frame) => {
      if (frame.type === "session") state.session = frame.session;
      chat.apply(frame);
      showNotes();
    },
    onStatus: setConnection,
    lastSeq: () => chat.lastSeq,
  });
  sidebar.select(session.id);
  showNotes();
  closeSidebarOnPhone();
}

function startNewChat() {
  state.socket?.close();
  state.socket = null;
  state.session = null;
  chat.reset();
  sidebar.select(null);
  if (location.hash) history.replaceState(null, "", location.pathname);
  showNotes();
  $("#message").focus();
}

async function send(content) {
  if (!content.trim() || chat.busy) return;
  if (!state.session) {
    const created = await api.createSession($("#new-chat-memory").checked);
    history.replaceState(null, "", `#/s/${created.id}`);
    connect(created);
  }
  const id = crypto.randomUUID();
  chat.sent(id, content);
  state.socket.send({ type: "query", id, content });
  $("#message").value = "";
  sidebar.refresh().then(() => sidebar.select(state.session.id));
}

async function loadOlder() {
  if (!state.session || !chat.hasMore || chat.loadingOlder) return;
  chat.loadingOlder = true;
  const before = chat.log.scrollHeight;
  try {
    const { messages, has_more } = await api.olderMessages(state.session.id, chat.oldestSeq);
    chat.addMessages(messages);
    chat.hasMore = has_more;
    chat.render();
    chat.log.scrollTop = chat.log.scrollHeight - before;
  } finally {
    chat.loadingOlder = false;
  }
}

async function signedIn(user) {
  if (!user) return;
  const anonymous = state.session && state.session.anonymous;
  state.user = user;
  if (anonymous) {
    try {
      await api.claim(state.session.id); // keep the chat they were in
    } catch (error) {
      chat.showAlert(`Could not keep this chat: ${error.message}`);
    }
  }
  await refreshIdentity();
  if (state.session) await openSession(state.session.id, { force: true });
}

async function refreshIdentity() {
  state.user = await api.me().catch(() => null);
  renderAccount($("#account"), state.user, {
    onLogin: () => auth.open("login").then(signedIn),
    onRegister: () => auth.open("register").then(signedIn),
    onLogout: async () => {
      await api.logout();
      await refreshIdentity();
      startNewChat();
    },
  });
  showNotes();
  return sidebar.refresh();
}

function route() {
  const match = location.hash.match(/^#\/s\/([0-9a-f-]{36})$/);
  if (match) openSession(match[1]);
}

function closeSidebarOnPhone() {
  $("#sidebar").classList.remove("open");
  $("#sidebar-toggle").setAttribute("aria-expanded", "false");
}

function wire() {
  $("#composer").addEventListener("submit", (event) => {
    event.preventDefault();
    send($("#message").value).catch((error) => chat.showAlert(error.message));
  });
  $("#message").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("#composer").requestSubmit();
    }
  });
  $("#stop").addEventListener("click", () => state.socket?.send({ type: "cancel" }));
  $("#new-chat").addEventListener("click", startNewChat);
  $("#memory-open").addEventListener("click", () => memoryPanel.open());
  $("#log").addEventListener("scroll", () => $("#log").scrollTop < 40 && loadOlder());
  $("#sidebar-toggle").addEventListener("click", () => {
    const open = $("#sidebar").classList.toggle("open");
    $("#sidebar-toggle").setAttribute("aria-expanded", String(open));
  });
  for (const button of document.querySelectorAll("[data-auth]")) {
    button.addEventListener("click", () => auth.open(button.dataset.auth).then(signedIn));
  }
  window.addEventListener("hashchange", route);
}

async function main() {
  wire();
  const sessions = await refreshIdentity();
  if (location.hash) route();
  else if (sessions.length) location.hash = `#/s/${sessions[0].id}`;
  else startNewChat();
}

main();
