// Personal API keys: made (shown once), listed, revoked (docs/agent-server-api.md).
import { api } from "./api.js";
import { copyButton } from "./clipboard.js";
import { humanMessage } from "./errors.js";

export class KeysPanel {
  constructor(dialog) {
    this.dialog = dialog;
    this.list = dialog.querySelector("#key-list");
    this.fresh = dialog.querySelector("#new-key");
    this.error = dialog.querySelector(".form-error");
    dialog.querySelector("#key-add").addEventListener("submit", (event) => this.add(event));
    dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => this.forgetFresh());
  }

  async open() {
    this.forgetFresh();
    this.dialog.showModal();
    await this.refresh();
  }

  forgetFresh() {
    this.fresh.hidden = true;
    this.fresh.replaceChildren();
  }

  async refresh() {
    try {
      const { api_keys } = await api.apiKeys();
      this.list.replaceChildren(...api_keys.map((key) => this.item(key)));
      if (!api_keys.length) this.list.append(Object.assign(document.createElement("li"), { textContent: "No keys yet." }));
      this.error.textContent = "";
    } catch (error) {
      this.error.textContent = humanMessage(error);
    }
  }

  item(key) {
    const li = Object.assign(document.createElement("li"), { className: "memory api-key" });
    const used = key.last_used_at ? `last used ${new Date(key.last_used_at).toLocaleString()}` : "never used";
    const text = Object.assign(document.createElement("span"), { textContent: `${key.name} · ${key.prefix}… · ${used}` });
    const revoke = Object.assign(document.createElement("button"), { type: "button", textContent: "Revoke" });
    revoke.setAttribute("aria-label", `Revoke key ${key.name}`);
    revoke.addEventListener("click", () => this.guard(() => api.revokeApiKey(key.id)));
    const actions = Object.assign(document.createElement("div"), { className: "actions" });
    actions.append(revoke);
    li.append(text, actions);
    return li;
  }

  async add(event) {
    event.preventDefault();
    const form = event.target;
    try {
      const made = await api.createApiKey(form.name.value.trim());
      form.reset();
      const code = Object.assign(document.createElement("code"), { textContent: made.key });
      const copy = copyButton("Copy the new key", () => made.key);
      this.fresh.replaceChildren("New key (copy it now; it is not shown again): ", code, " ", copy);
      this.fresh.hidden = false;
    } catch (error) {
      this.error.textContent = humanMessage(error);
      return;
    }
    await this.refresh();
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
