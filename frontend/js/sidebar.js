// The list of conversations: newest activity first, grouped by day (Today,
// Yesterday, Previous 7 days, Older); search; and per row a "…" menu to rename
// (in place), archive, export or delete (optionally forgetting what was learned).
import { api } from "./api.js";
import { ThreadMenu } from "./thread-menu.js";

const GROUPS = ["Today", "Yesterday", "Previous 7 days", "Older"];

export class Sidebar {
  constructor({ list, search, archived, menu, deleteDialog, canList, onOpen, onDeleted, onError, onLoaded, onUnauthorized }) {
    Object.assign(this, { list, search, archived, deleteDialog, canList, onOpen, onDeleted, onError, onLoaded, onUnauthorized });
    this.menu = new ThreadMenu(menu, () => this.redrawIfDeferred());
    this.currentId = null;
    this.sessions = []; // as the server last listed them
    this.titles = new Map(); // session id -> title shown until the server names it
    this.generation = 0; // of the list shown: a reply to an older request is dropped
    this.deferred = false; // a redraw waits for the open menu or the rename field
    let timer;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.refresh(), 250);
    });
    archived.addEventListener("change", () => this.refresh());
  }

  async refresh() {
    const generation = ++this.generation;
    if (!this.canList()) {
      this.show([]);
      return [];
    }
    try {
      const { sessions } = await api.sessions({ q: this.search.value.trim(), archived: this.archived.checked });
      this.onLoaded?.();
      if (generation === this.generation) this.show(sessions);
      return sessions;
    } catch (error) {
      if (error.status === 401) {
        this.onUnauthorized?.();
        this.show([]);
        return [];
      }
      this.onError(error);
      return [];
    }
  }

  /** Show a session at once, before the server lists it; `title` until the server names it. */
  showOptimistic(session, title) {
    if (!session.title && title) this.titles.set(session.id, title);
    if (this.search.value.trim() || this.archived.checked) return; // it may not match what is listed
    const known = this.sessions.find((s) => s.id === session.id);
    const now = new Date().toISOString();
    const shown = { ...(known || session), last_activity_at: now };
    this.generation += 1; // a list requested before this does not have it yet
    this.show([shown, ...this.sessions.filter((s) => s.id !== session.id)]);
  }

  show(sessions) {
    this.sessions = sessions;
    // Not under the reader's hands: redrawn when the menu closes or the rename ends.
    this.deferred = this.renaming || this.menu.isOpen();
    if (this.deferred) return;
    for (const s of sessions) if (s.title) this.titles.delete(s.id);
    const groups = new Map(GROUPS.map((name) => [name, []]));
    for (const session of sessions) groups.get(dayGroup(session.last_activity_at)).push(session);
    const sections = [];
    for (const [name, members] of groups) {
      if (!members.length) continue;
      const section = document.createElement("section");
      section.className = "thread-group";
      const heading = Object.assign(document.createElement("h2"), { textContent: name });
      const ul = document.createElement("ul");
      ul.append(...members.map((s) => this.item(s)));
      section.setAttribute("aria-label", name);
      section.append(heading, ul);
      sections.push(section);
    }
    this.list.replaceChildren(...sections);
  }

  redrawIfDeferred() {
    if (this.deferred) this.show(this.sessions);
  }

  select(id) {
    this.currentId = id;
    for (const li of this.list.querySelectorAll(".thread")) li.classList.toggle("current", li.dataset.id === id);
  }

  titleOf(session) {
    return session.title || this.titles.get(session.id) || "New conversation";
  }

  item(session) {
    const li = document.createElement("li");
    li.className = `thread${session.id === this.currentId ? " current" : ""}`;
    li.dataset.id = session.id;
    const open = document.createElement("button");
    open.type = "button";
    open.className = "thread-open";
    const title = Object.assign(document.createElement("span"), { className: "thread-title", textContent: this.titleOf(session) });
    const meta = Object.assign(document.createElement("span"), { className: "thread-meta", textContent: describe(session) });
    open.append(title, meta);
    open.addEventListener("click", () => this.onOpen(session.id));
    const more = Object.assign(document.createElement("button"), { type: "button", className: "thread-more", textContent: "…" });
    more.setAttribute("aria-label", `More for ${this.titleOf(session)}`);
    more.setAttribute("aria-haspopup", "menu");
    more.setAttribute("aria-expanded", "false");
    this.menu.attach(more, () => this.actions(session));
    li.append(open, more);
    return li;
  }

  actions(session) {
    return [
      { label: "Rename", run: () => this.startRename(session) },
      { label: session.archived ? "Unarchive" : "Archive", run: () => this.archive(session) },
      { label: "Export as JSON", href: api.exportUrl(session.id, "json") },
      { label: "Export as Markdown", href: api.exportUrl(session.id, "md") },
      { label: "Delete", danger: true, run: () => this.remove(session) },
    ];
  }

  /** Rename in place: Enter or leaving the field saves, Escape cancels. */
  startRename(session) {
    const open = this.row(session.id)?.querySelector(".thread-open");
    if (!open) return;
    const input = Object.assign(document.createElement("input"), {
      type: "text",
      className: "thread-rename",
      value: session.title || this.titles.get(session.id) || "",
      maxLength: 200,
    });
    input.setAttribute("aria-label", "New title");
    const finish = async (save) => {
      if (!this.renaming) return;
      this.renaming = false;
      const title = input.value.trim();
      const changed = save && title && title !== session.title;
      if (changed) open.querySelector(".thread-title").textContent = title;
      input.replaceWith(open);
      open.focus();
      if (changed) await this.guard(() => api.updateSession(session.id, { title }));
      else this.redrawIfDeferred();
      this.row(session.id)?.querySelector(".thread-open")?.focus();
    };
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.isComposing) {
        event.preventDefault();
        finish(true);
      } else if (event.key === "Escape") {
        event.preventDefault();
        finish(false);
      }
    });
    input.addEventListener("blur", () => finish(true));
    this.renaming = true;
    open.replaceWith(input);
    input.focus();
    input.select();
  }

  row(id) {
    return [...this.list.querySelectorAll(".thread")].find((li) => li.dataset.id === id);
  }

  async archive(session) {
    await this.guard(() => api.updateSession(session.id, { archived: !session.archived }));
  }

  async remove(session) {
    const dialog = this.deleteDialog;
    dialog.querySelector("#delete-title").textContent = `Delete “${this.titleOf(session)}”?`;
    dialog.querySelector("[name=forget]").checked = false;
    dialog.showModal();
    const choice = await new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true }));
    if (choice !== "delete") return;
    const forget = dialog.querySelector("[name=forget]").checked;
    await this.guard(() => api.deleteSession(session.id, forget));
    this.onDeleted(session.id);
  }

  async guard(action) {
    try {
      await action();
    } catch (error) {
      this.onError(error);
    }
    await this.refresh();
  }
}

function describe(session) {
  const notes = [relativeTime(session.last_activity_at)];
  if (session.anonymous) notes.push("temporary");
  else if (session.memory === false) notes.push("memory off");
  if (session.archived) notes.push("archived");
  return notes.join(" · ");
}

/** Which of GROUPS a time falls in, by the reader's calendar days. */
export function dayGroup(iso, now = new Date()) {
  const daysBack = (n) => new Date(now.getFullYear(), now.getMonth(), now.getDate() - n).getTime();
  const time = new Date(iso).getTime();
  if (time >= daysBack(0)) return "Today";
  if (time >= daysBack(1)) return "Yesterday";
  if (time >= daysBack(7)) return "Previous 7 days"; // back to the same weekday last week
  return "Older";
}

export function relativeTime(iso) {
  const seconds = (Date.now() - new Date(iso).getTime()) / 1000;
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}
