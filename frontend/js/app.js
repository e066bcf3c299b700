// Wires the page together: who you are, which conversation is open, the socket.
import { api } from "./api.js";
import { AuthDialog, renderAccount } from "./auth.js";
import { ChatView } from "./chat.js";
import { humanMessage } from "./errors.js";
import { knownIdentity, rememberIdentity } from "./identity.js";
import { KeysPanel } from "./keys.js";
import { MemoryPanel } from "./memory.js";
import { ModelPicker } from "./models.js";
import { Sidebar } from "./sidebar.js";
import { ThreadSocket } from "./socket.js";

const $ = (selector) => document.querySelector(selector);
const state = { user: null, session: null, socket: null, identityKnown: false };

const EMPTY = {
  anonymous: "Ask anything. I remember what you say in this chat for 24 hours; nothing is learned about you long-term.",
  memoryOn: "Ask anything. Tell me your name, where you live or what you work on, and I will remember it across chats.",
  memoryOff: "Ask anything. Memory is off for this chat: I remember what you say here, but nothing is read from or saved to what I know about you.",
};

const chat = new ChatView({
  log: $("#log"),
  steps: $("#steps"),
  alert: $("#alert"),
  onIdle: () => sidebar.refresh().then(() => sidebar.select(state.session?.id)),
  onBusyChange: showComposer,
  resend: (id, content) => state.socket?.send({ type: "query", id, content }),
  sendFrame: (frame) => state.socket?.send(frame),
  emptyText,
});
const sidebar = new Sidebar({
  list: $("#thread-list"),
  search: $("#thread-search"),
  archived: $("#show-archived"),
  menu: $("#thread-menu"),
  deleteDialog: $("#delete-dialog"),
  canList: () => Boolean(knownIdentity()),
  onOpen: (id) => {
    closeSidebarOnPhone();
    location.hash = `#/s/${id}`;
  },
  onDeleted: (id) => id === state.session?.id && startNewChat(),
  onError: reportError,
  onLoaded: () => chat.hideAlert("connection"),
  onUnauthorized: () => rememberIdentity(null), // no identity left: ask nothing next time
});
const auth = new AuthDialog($("#auth-dialog"));
const memoryPanel = new MemoryPanel($("#memory-dialog"));
const keysPanel = new KeysPanel($("#keys-dialog"));
const models = new ModelPicker($("#model"), $("#model-row"), { onError: reportError });

/** Show what went wrong in words; a lost connection clears itself once the server answers. */
function reportError(error) {
  chat.showAlert(humanMessage(error), error?.code === "network" ? "connection" : "error");
}

function setConnection(status) {
  const text = { connected: "", reconnecting: "Connection lost — reconnecting…", gone: "This conversation no longer exists.", refused: "Not allowed to open this conversation." };
  const el = $("#connection");
  el.textContent = text[status] ?? "";
  el.classList.toggle("down", status !== "connected");
  if (status === "connected") chat.hideAlert("connection");
}

function emptyText() {
  if (!state.identityKnown) return "Ask anything.";
  if (!state.user) return EMPTY.anonymous;
  const memory = state.session ? state.session.memory : $("#new-chat-memory").checked;
  return memory ? EMPTY.memoryOn : EMPTY.memoryOff;
}

function showNotes() {
  $("#anon-note").hidden = !state.identityKnown || Boolean(state.user);
  $("#memory-off-note").hidden = !state.user || !state.session || state.session.memory;
  $("#memory-open").hidden = !state.user;
  $("#memory-toggle-label").hidden = !state.user;
  $("#empty")?.replaceChildren(emptyText());
}

/** Send while idle; while an answer runs, Stop takes Send's place. */
function showComposer(busy = chat.busy) {
  $("#send").hidden = busy;
  $("#stop").hidden = !busy;
  $("#send").disabled = !$("#message").value.trim();
}

/** The message box grows with what is typed, up to its CSS max-height. */
function fitMessageBox() {
  const box = $("#message");
  box.style.height = "auto";
  box.style.height = `${box.scrollHeight + box.offsetHeight - box.clientHeight}px`;
}

async function openSession(id, { force = false } = {}) {
  if (!force && state.session?.id === id && state.socket) return;
  let session;
  try {
    session = await api.session(id);
  } catch (error) {
    startNewChat();
    reportError(error);
    return;
  }
  if (!knownIdentity()) {
    // A link to a conversation this browser may open: it holds an identity after all.
    rememberIdentity("unknown");
    await refreshIdentity();
  }
  connect(session);
}

function connect(session) {
  state.socket?.close();
  chat.reset();
  state.session = session;
  state.socket = new ThreadSocket(session.id, {
    onFrame: (frame) => {
      if (frame.type === "session") {
        state.session = frame.session;
        models.show(frame.session);
      }
      chat.apply(frame);
      showNotes();
    },
    onStatus: setConnection,
    lastSeq: () => chat.lastSeq,
  });
  sidebar.select(session.id);
  models.show(session);
  showNotes();
  closeSidebarOnPhone();
}

function startNewChat() {
  state.socket?.close();
  state.socket = null;
  state.session = null;
  chat.reset();
  models.show(null);
  sidebar.select(null);
  if (location.hash) history.replaceState(null, "", location.pathname);
  showNotes();
  $("#message").focus();
}

async function send(content) {
  if (!content.trim() || chat.busy) return;
  if (!state.session) {
    const created = await api.createSession($("#new-chat-memory").checked, models.forNewChats());
    if (!state.user) rememberIdentity("anonymous");
    history.replaceState(null, "", `#/s/${created.id}`);
    connect(created);
  }
  const id = crypto.randomUUID();
  chat.sent(id, content);
  state.socket.send({ type: "query", id, content });
  $("#message").value = "";
  fitMessageBox();
  showComposer();
  sidebar.showOptimistic(state.session, state.session.title ? null : titleFrom(content));
  sidebar.select(state.session.id);
}

/** The title the server will give a session from its first question (memory/sessions.py). */
function titleFrom(question) {
  return question.slice(0, 80).split(/\s+/).filter(Boolean).join(" ");
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
  } catch (error) {
    reportError(error);
  } finally {
    chat.loadingOlder = false;
  }
}

async function signedIn(user) {
  if (!user) return;
  rememberIdentity("user");
  const anonymous = state.session && state.session.anonymous;
  state.user = user;
  if (anonymous) {
    try {
      await api.claim(state.session.id); // keep the chat they were in
    } catch (error) {
      chat.showAlert(`Could not keep this chat: ${humanMessage(error)}`);
    }
  }
  await refreshIdentity();
  if (state.session) await openSession(state.session.id, { force: true });
}

/** Who this is: /api/auth/identity answers 200 even for nobody, so a first
 * visit sees no 401; what it says decides whether there is a list to ask for. */
async function refreshIdentity() {
  const who = await api.identity().catch(() => null);
  if (who) {
    state.user = who.user;
    rememberIdentity(who.user ? "user" : who.anonymous ? "anonymous" : null);
  } else {
    state.user = null; // the server is unreachable: the connection alert says so
  }
  state.identityKnown = true;
  renderAccount($("#account"), state.user, {
    onLogin: () => auth.open("login").then(signedIn),
    onRegister: () => auth.open("register").then(signedIn),
    onKeys: () => keysPanel.open(),
    onLogout: async () => {
      await api.logout().catch(reportError);
      rememberIdentity(null);
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
    send($("#message").value).catch(reportError);
  });
  $("#message").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("#composer").requestSubmit();
    }
  });
  $("#message").addEventListener("input", () => {
    fitMessageBox();
    showComposer();
  });
  $("#stop").addEventListener("click", () => state.socket?.send({ type: "cancel" }));
  $("#new-chat").addEventListener("click", startNewChat);
  $("#new-chat-memory").addEventListener("change", showNotes);
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
  showComposer(false);
  models.load();
  const sessions = await refreshIdentity();
  if (location.hash) route();
  else if (sessions.length) location.hash = `#/s/${sessions[0].id}`;
  else startNewChat();
}

main();
