// The memory panel: what the assistant remembers about the logged-in user.
import { api } from "./api.js";
import { humanMessage } from "./errors.js";

// What the panel shows, in this order: what it knows about the person, then
// what past conversations were about.
const GROUPS = [
  ["About you", ["fact", "preference", "entity"]],
  ["Past conversations", ["summary"]],
];

function heading(title) {
  const li = Object.assign(document.createElement("li"), { className: "memory-group", textContent: title });
  li.setAttribute("role", "presentation");
  return li;
}

export class MemoryPanel {
  constructor(dialog) {
    this.dialog = dialog;
    this.list = dialog.querySelector("#memory-list");
    this.search = dialog.querySelector("#memory-search");
    this.error = dialog.querySelector(".form-error");
    let timer;
    this.search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.refresh(), 250);
    });
    dialog.querySelector("#memory-add").addEventListener("submit", (event) => this.add(event));
    dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
  }

  async open() {
    this.dialog.showModal();
    await this.refresh();
  }

  async refresh() {
    try {
      const { memories } = await api.memories(this.search.value.trim());
      const groups = GROUPS.map(([title, kinds]) => [title, memories.filter((m) => kinds.includes(m.kind))]);
      this.list.replaceChildren(
        ...groups.filter(([, found]) => found.length).flatMap(([title, found]) => [heading(title), ...found.map((m) => this.item(m))]),
      );
      if (!memories.length) this.list.append(Object.assign(document.createElement("li"), { textContent: "Nothing yet." }));
      this.error.textContent = "";
    } catch (error) {
      this.error.textContent = humanMessage(error);
    }
  }

  item(memory) {
    const li = document.createElement("li");
    li.className = "memory";
    const kind = Object.assign(document.createElement("span"), { className: "kind", textContent: memory.kind });
    const text = Object.assign(document.createElement("span"), { textContent: memory.content });
    const actions = document.createElement("div");
    actions.className = "actions";
    if (memory.source_session_id) {
      const source = Object.assign(document.createElement("a"), { href: `#/s/${memory.source_session_id}`, textContent: "source" });
      source.addEventListener("click", () => this.dialog.close());
      actions.append(source);
    }
    actions.append(
      button("Edit", `Edit memory: ${memory.content}`, () => this.edit(memory)),
      button("Delete", `Delete memory: ${memory.content}`, () => this.remove(memory)),
    );
    li.append(kind, text, actions);
    return li;
  }

  async add(event) {
    event.preventDefault();
    const form = event.target;
    await this.guard(() => api.addMemory(form.kind.value, form.content.value));
    form.content.value = "";
  }

  async edit(memory) {
    const content = prompt("Edit memory", memory.content);
    if (content) await this.guard(() => api.updateMemory(memory.id, content));
  }

  async remove(memory) {
    await this.guard(() => api.deleteMemory(memory.id));
  }

  async guard(action) {
    try {
      await action();
    } catch (error) {
      this.error.textContent = humanMessage(error);
      return;
    }
    await this.refresh();
  }
}

function button(text, labelText, handler) {
  const b = Object.assign(document.createElement("button"), { type: "button", textContent: text });
  b.setAttribute("aria-label", labelText);
  b.addEventListener("click", handler);
  return b;
}
