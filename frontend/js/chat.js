// The conversation: journaled messages by seq, the answer being streamed, the
// agent's steps, and the memories each answer used.
import { renderMarkdown } from "./markdown.js";

const STEP_NAMES = { initialize: "Saving your message", planning: "Planning", execution: "Generating", response: "Saving the answer" };

export class ChatView {
  constructor({ log, steps, alert, onIdle, onBusyChange, resend }) {
    Object.assign(this, { log, steps, alert, onIdle, onBusyChange, resend });
    this.reset();
  }

  reset() {
    this.messages = new Map(); // id -> journaled message
    this.pending = new Map(); // id -> text sent, not yet acked
    this.inFlight = null; // acked query id still waiting for its answer
    this.streaming = null; // { runId, text }
    this.memoriesByRun = new Map();
    this.hasMore = false;
    this.setBusy(false);
    this.steps.textContent = "";
    this.hideAlert();
    this.render();
  }

  get lastSeq() {
    let last = 0;
    for (const m of this.messages.values()) last = Math.max(last, m.seq);
    return last;
  }

  get oldestSeq() {
    let first = Infinity;
    for (const m of this.messages.values()) first = Math.min(first, m.seq);
    return first;
  }

  setBusy(busy) {
    this.busy = busy;
    this.onBusyChange?.(busy);
  }

  addMessages(list) {
    for (const m of list) this.messages.set(m.id, m);
  }

  sent(id, content) {
    this.pending.set(id, content);
    this.hideAlert();
    this.setBusy(true);
    this.render();
  }

  apply(frame) {
    const handler = this[`on_${frame.type}`];
    if (handler) handler.call(this, frame);
  }

  on_session(frame) {
    this.addMessages(frame.messages);
    this.hasMore = frame.has_more;
    if (frame.active_run) this.setBusy(true);
    this.render();
  }

  on_ack(frame) {
    if (frame.message) this.addMessages([frame.message]);
    this.pending.delete(frame.id);
    if (frame.replayed) return this.render();
    this.inFlight = frame.id;
    this.setBusy(true);
    this.render();
  }

  on_progress(frame) {
    this.setBusy(true);
    if (frame.status === "started") this.steps.textContent = `${STEP_NAMES[frame.node] || frame.node}…`;
  }

  on_memory_loaded(frame) {
    this.memoriesByRun.set(frame.run_id, frame.memories);
    this.steps.textContent = `Loaded ${frame.memory_count} ${frame.memory_count === 1 ? "memory" : "memories"}…`;
  }

  on_tool(frame) {
    if (frame.status === "started") this.steps.textContent = `Using ${frame.name.replaceAll("_", " ")}…`;
  }

  on_token(frame) {
    if (!this.streaming || this.streaming.runId !== frame.run_id) this.streaming = { runId: frame.run_id, text: "" };
    this.streaming.text += frame.content;
    this.renderStreaming();
  }

  on_message(frame) {
    this.addMessages([frame.message]);
    if (frame.message.role === "assistant") {
      this.streaming = null;
      if (frame.message.reply_to === this.inFlight) this.inFlight = null;
    }
    this.render();
  }

  on_done() {
    this.streaming = null;
    this.inFlight = null;
    this.steps.textContent = "";
    this.setBusy(this.pending.size > 0);
    this.render();
    this.onIdle?.();
  }

  on_resumed(frame) {
    if (frame.active_run) return this.setBusy(true);
    this.streaming = null; // the run it belonged to is over; its answer (if any) is journaled
    const answered = [...this.messages.values()].some((m) => m.reply_to === this.inFlight);
    if (this.inFlight && !answered) {
      const asked = this.messages.get(this.inFlight);
      this.resend(this.inFlight, asked ? asked.content : ""); // cut off by a restart: run it now
      return;
    }
    this.inFlight = null;
    this.steps.textContent = "";
    this.setBusy(this.pending.size > 0);
    this.render();
  }

  on_error(frame) {
    if (frame.id) this.pending.delete(frame.id);
    if (frame.id && frame.id === this.inFlight) this.inFlight = null;
    this.streaming = null;
    this.steps.textContent = "";
    const text = frame.code === "busy"
      ? "This conversation is still answering (perhaps in another tab). Wait for it to finish, then send again."
      : frame.code === "model_unavailable"
        ? "The model is unavailable right now. Your message is saved; send it again to retry."
        : frame.message;
    this.showAlert(text);
    this.setBusy(false);
    this.render();
  }

  showAlert(text) {
    this.alert.textContent = text;
    this.alert.hidden = false;
  }

  hideAlert() {
    this.alert.hidden = true;
    this.alert.textContent = "";
  }

  render() {
    const stick = this.nearBottom();
    const ordered = [...this.messages.values()].sort((a, b) => a.seq - b.seq);
    const nodes = ordered.map((m) => this.messageNode(m));
    for (const [id, content] of this.pending) {
      if (!this.messages.has(id)) nodes.push(this.bubble("user pending", content, id));
    }
    if (this.streaming) nodes.push(this.streamingNode());
    if (!nodes.length) nodes.push(this.emptyNode());
    this.log.replaceChildren(...nodes);
    if (stick) this.log.scrollTop = this.log.scrollHeight;
  }

  renderStreaming() {
    const stick = this.nearBottom();
    const node = this.log.querySelector(".msg.streaming") || this.log.appendChild(this.streamingNode());
    renderMarkdown(node.querySelector(".body"), this.streaming.text);
    this.log.querySelector("#empty")?.remove();
    if (stick) this.log.scrollTop = this.log.scrollHeight;
  }

  nearBottom() {
    return this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 80;
  }

  emptyNode() {
    const p = document.createElement("p");
    p.id = "empty";
    p.className = "empty";
    p.textContent = "Ask anything. Tell me your name, where you live or what you work on, and I will remember it.";
    return p;
  }

  bubble(kind, text, id) {
    const node = document.createElement("article");
    node.className = `msg ${kind}`;
    if (id) node.dataset.id = id;
    const body = document.createElement("div");
    body.className = "body";
    node.append(body);
    if (kind.startsWith("user")) body.textContent = text;
    else renderMarkdown(body, text);
    return node;
  }

  streamingNode() {
    const node = this.bubble("assistant streaming", this.streaming ? this.streaming.text : "");
    node.setAttribute("aria-busy", "true");
    return node;
  }

  messageNode(m) {
    const node = this.bubble(`${m.role}${m.has_error ? " error" : ""}`, m.content, m.id);
    node.dataset.seq = m.seq;
    if (m.role !== "assistant") return node;
    const meta = document.createElement("div");
    meta.className = "msg-meta";
    if (m.cancelled) meta.append(label("stopped"));
    if (m.has_error) meta.append(label(m.error_message || "error"));
    const used = m.memories_used?.length ? m.memories_used : [];
    if (used.length) meta.append(memoryChip(used));
    if (meta.childNodes.length) node.append(meta);
    return node;
  }
}

function label(text) {
  const span = document.createElement("span");
  span.textContent = text;
  return span;
}

function memoryChip(memories) {
  const details = document.createElement("details");
  details.className = "memories-used";
  const summary = document.createElement("summary");
  summary.className = "chip";
  summary.textContent = `${memories.length} ${memories.length === 1 ? "memory" : "memories"} used`;
  const list = document.createElement("ul");
  list.className = "chip-list";
  for (const memory of memories) {
    const item = document.createElement("li");
    item.textContent = `${memory.content} `;
    if (memory.source_session_id) {
      const link = document.createElement("a");
      link.href = `#/s/${memory.source_session_id}`;
      link.textContent = "(where I learned it)";
      item.append(link);
    }
    list.append(item);
  }
  details.append(summary, list);
  return details;
}
