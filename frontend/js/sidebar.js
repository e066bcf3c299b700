// The list of conversations: newest activity first, search, rename, archive,
// delete (optionally forgetting what was learned), export.
import { api } from "./api.js";

export class Sidebar {
  constructor({ list, search, archived, deleteDialog, onOpen, onDeleted, onError }) {
    Object.assign(this, { list, search, archived, deleteDialog, onOpen, onDeleted, onError });
    this.currentId = null;
    let timer;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.refresh(), 250);
    });
    archived.addEventListener("change", () => this.refresh());
  }

  async refresh() {
    try {
      const { sessions } = await api.sessions({ q: this.search.value.trim(), archived: this.archived.checked });
      this.list.replaceChildren(...sessions.map((s) => this.item(s)));
      return sessions;
    } catch (error) {
      if (error.status === 401) {
        this.list.replaceChildren();
        return [];
      }
      this.onError(error.message);
      return [];
    }
  }

  select(id) {
    this.currentId = id;
    for (const li of this.list.children) li.classList.toggle("current", li.dataset.id === id);
  }

  item(session) {
    const li = document.createElement("li");
    li.className = `thread${session.id === this.currentId ? " current" : ""}`;
    li.dataset.id = session.id;
    const open = document.createElement("button");
    open.className = "thread-open";
    open.innerHTML = '<span class="thread-title"></span><span class="thread-meta"></span>';
    open.querySelector(".thread-title").textContent = session.title || "New conversation";
    open.querySelector(".thread-meta").textContent =
      `${relativeTime(session.last_activity_at)}${session.anonymous ? " · temporary" : session.memory ? "" : " · memory off"}`;
    open.addEventListener("click", () => this.onOpen(session.id));
    li.append(open, this.actions(session));
    return li;
  }

  actions(session) {
    const box = document.createElement("div");
    box.className = "thread-actions";
    const name = session.title || "conversation";
    box.append(
      action("Rename", `Rename ${name}`, () => this.rename(session)),
      action(session.archived ? "Unarchive" : "Archive", `Archive ${name}`, () => this.archive(session)),
      action("Delete", `Delete ${name}`, () => this.remove(session)),
      download("JSON", api.exportUrl(session.id, "json"), `Export ${name} as JSON`),
      download("MD", api.exportUrl(session.id, "md"), `Export ${name} as Markdown`),
    );
    return box;
  }

  async rename(session) {
    const title = prompt("Rename conversation", session.title || "");
    if (title === null) return;
    await this.guard(() => api.updateSession(session.id, { title }));
  }

  async archive(session) {
    await this.guard(() => api.updateSession(session.id, { archived: !session.archived }));
  }

  async remove(session) {
    const dialog = this.deleteDialog;
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
      this.onError(error.code === "busy" ? "That conversation is answering right now; try again in a moment." : error.message);
    }
    await this.refresh();
  }
}

function action(text, labelText, handler) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = text;
  button.setAttribute("aria-label", labelText);
  button.addEventListener("click", handler);
  return button;
}

function download(text, href, labelText) {
  const link = document.createElement("a");
  link.href = href;
  link.textContent = text;
  link.setAttribute("download", "");
  link.setAttribute("aria-label", labelText);
  return link;
}

export function relativeTime(iso) {
  const seconds = (Date.now() - new Date(iso).getTime()) / 1000;
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}
