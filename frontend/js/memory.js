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
    this.retention = dialog.querySelector("#retention");
    this.retention.addEventListener("change", () => this.keepFor(this.retention.value));
  }

  async open() {
    this.dialog.showModal();
    await Promise.all([this.refresh(), this.showRetention()]);
  }

  /** The account's retention; one not among the choices is added as it is. */
  async showRetention() {
    try {
      const { retention_days: days } = await api.me();
      const value = days ? String(days) : "";
      if (![...this.retention.options].some((o) => o.value === value)) {
        this.retention.append(Object.assign(document.createElement("option"), { value, textContent: `${days} days` }));
      }
      this.retention.value = value;
    } catch (error) {
      this.error.textContent = humanMessage(error);
    }
  }

  async keepFor(value) {
    try {
      await api.updateMe({ retention_days: value ? Number(value) : null });
      this.error.textContent = "";
    } catch (error) {
      this.error.textContent = humanMessage(error);
      await this.showRetention();
    }
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
    li.dataset.id = memory.id;
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

  /** Edit in place: the memory's text becomes a field with Save and Cancel. */
  edit(memory) {
    const li = [...this.list.children].find((item) => item.dataset.id === memory.id);
    if (!li) return;
    const form = document.createElement("form");
    form.className = "memory-edit";
    const field = Object.assign(document.createElement("input"), { type: "text", value: memory.content, required: true });
    field.setAttribute("aria-label", "Memory");
    const save = Object.assign(document.createElement("button"), { type: "submit", textContent: "Save" });
    const cancel = button("Cancel", "Cancel editing", () => this.refresh());
    form.append(field, save, cancel);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const content = field.value.trim();
      if (content) this.guard(() => api.updateMemory(memory.id, content));
    });
    field.addEventListener("keydown", (event) => {
      if (event.key !== "Escape") return;
      event.preventDefault(); // Escape cancels the edit, not the whole panel
      this.refresh();
    });
    li.replaceChildren(form);
    field.focus();
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
