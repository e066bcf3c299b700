// The model picker: shown when the server offers more than one model (an
// OpenAI-compatible endpoint that lists several). Each chat keeps its own
// choice on the server; the last one chosen is the choice for new chats.

import { api } from "./api.js";

const LAST_CHOICE = "threadline:model";

export class ModelPicker {
  constructor(select, row, { onError }) {
    Object.assign(this, { select, row, onError });
    this.names = [];
    this.default = null;
    this.session = null;
    select.addEventListener("change", () => this.chosen());
  }

  async load() {
    try {
      const { models, default: fallback } = await api.models();
      this.names = models;
      this.default = fallback;
    } catch {
      this.names = []; // the picker stays hidden; chats use the server's default
    }
    this.select.replaceChildren(
      ...this.names.map((name) => {
        const option = document.createElement("option");
        option.value = option.textContent = name;
        return option;
      }),
    );
    this.row.hidden = this.names.length < 2;
    this.show(this.session);
  }

  /** Show the chat's model (`null`: a new chat, which gets the last choice). */
  show(session) {
    this.session = session;
    const wanted = session ? session.model || this.default : this.forNewChats() || this.default;
    if (this.names.includes(wanted)) this.select.value = wanted;
  }

  /** What a new chat asks for: the last choice, while it is offered (null: the default). */
  forNewChats() {
    const last = localStorage.getItem(LAST_CHOICE);
    return last && last !== this.default && this.names.includes(last) ? last : null;
  }

  async chosen() {
    const name = this.select.value;
    localStorage.setItem(LAST_CHOICE, name);
    if (!this.session) return;
    try {
      this.session = await api.updateSession(this.session.id, { model: name });
    } catch (error) {
      this.show(this.session);
      this.onError(error);
    }
  }
}
