// The conversation: journaled messages by seq, the answer being streamed, the
// agent's steps, and the memories each answer used.
//
// Live tokens are shown for a run this socket saw start, or whose start the
// server sent (`answer_so_far` on connect). Otherwise the tokens that arrive
// continue an answer whose beginning was never received, so the view says
// "Answer in progress…" until the journaled message replaces it.
//
// The last question can be edited and its answer regenerated: the server takes
// them out of the journal (`retracted`) and runs the turn again.
import { answerMeta } from "./answer-meta.js";
import { copyButton } from "./clipboard.js";
import { humanMessage } from "./errors.js";
import { renderMarkdown } from "./markdown.js";

const STEP_NAMES = { initialize: "Saving your message", planning: "Planning", execution: "Generating", response: "Saving the answer" };
const WAIT_HINT_MS = 5000; // time without a word of the answer (or a tool call) before the model is said to be slow
const IN_PROGRESS = "Answer in progress…";

export class ChatView {
  constructor({ log, steps, alert, onIdle, onBusyChange, resend, sendFrame, emptyText }) {
    Object.assign(this, { log, steps, alert, onIdle, onBusyChange, resend, sendFrame, emptyText });
    this.openDetails = new Set(); // "<message id>:<box>" the reader opened; kept across renders
    this.reset();
  }

  reset() {
    this.messages = new Map(); // id -> journaled message
    this.pending = new Map(); // id -> text sent, not yet acked
    this.inFlight = null; // acked query id still waiting for its answer
    this.streaming = null; // { runId, text, partial }; partial: a run whose start we did not see
    this.watched = new Set(); // ids of the runs this socket saw start
    this.editing = null; // { id, text }: the last question, being edited
    this.hasMore = false;
    this.setBusy(false);
    this.setStep("");
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
    if (busy === this.busy) return;
    this.busy = busy;
    this.onBusyChange?.(busy);
    if (busy) this.heard();
    else this.stopWaiting();
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
    this.watched.clear(); // a new socket: what was live before is no longer followed from its start
    this.streaming = frame.active_run ? { runId: null, text: "", partial: true } : null;
    const soFar = frame.answer_so_far;
    if (frame.active_run && soFar) {
      // The answer from its start: what it streamed before this socket, then its tokens.
      this.watch(soFar.run_id);
      this.streaming = { runId: soFar.run_id, text: soFar.content, partial: false };
    }
    this.addMessages(frame.messages);
    this.hasMore = frame.has_more;
    if (frame.active_run) this.setBusy(true);
    this.render();
  }

  on_ack(frame) {
    if (frame.message) this.addMessages([frame.message]);
    this.pending.delete(frame.id);
    if (frame.replayed) return this.render();
    this.watch(frame.run_id);
    this.inFlight = frame.id;
    this.setBusy(true);
    this.render();
  }

  on_progress(frame) {
    if (frame.node === "initialize" && frame.status === "started") this.watch(frame.run_id);
    this.setBusy(true);
    if (frame.status === "started") this.setStep(`${STEP_NAMES[frame.node] || frame.node}…`);
    else if (frame.node === "planning" && frame.plan) {
      this.setStep(`Plan: ${humanName(frame.plan)}${frame.reason ? ` (${frame.reason})` : ""}…`);
    }
  }

  on_memory_loaded(frame) {
    this.setStep(`Loaded ${frame.memory_count} ${frame.memory_count === 1 ? "memory" : "memories"}…`);
  }

  on_tool(frame) {
    this.heard();
    if (frame.status === "started") this.setStep(`Using ${humanName(frame.name)}${argumentsNote(frame.args)}…`);
  }

  on_token(frame) {
    this.heard();
    if (!this.watched.has(frame.run_id) && frame.at === 0) this.watch(frame.run_id); // its start
    if (!this.watched.has(frame.run_id)) {
      if (this.streaming?.partial) return; // "Answer in progress…" is already shown
      this.streaming = { runId: frame.run_id, text: "", partial: true };
      return this.render();
    }
    if (!this.streaming || this.streaming.runId !== frame.run_id) this.streaming = { runId: frame.run_id, text: "", partial: false };
    this.streaming.text += frame.content;
    this.renderStreaming();
  }

  on_message(frame) {
    const message = frame.message;
    this.addMessages([message]);
    if (message.role === "assistant") {
      this.streaming = null;
      if (message.reply_to === this.inFlight) this.inFlight = null;
    }
    this.render();
  }

  on_done(frame) {
    this.streaming = null;
    this.inFlight = null;
    this.watched.delete(frame.run_id);
    this.setStep("");
    this.setBusy(this.pending.size > 0);
    this.render();
    this.onIdle?.();
  }

  on_resumed(frame) {
    if (frame.active_run) {
      this.streaming ??= { runId: null, text: "", partial: true };
      this.setBusy(true);
      return this.render();
    }
    this.streaming = null; // the run it belonged to is over; its answer (if any) is journaled
    const answered = [...this.messages.values()].some((m) => m.reply_to === this.inFlight);
    if (this.inFlight && !answered) {
      const asked = this.messages.get(this.inFlight);
      this.resend(this.inFlight, asked ? asked.content : ""); // cut off by a restart: run it now
      return;
    }
    this.inFlight = null;
    this.setStep("");
    this.setBusy(this.pending.size > 0);
    this.render();
  }

  on_error(frame) {
    if (frame.id) this.pending.delete(frame.id);
    if (frame.id && frame.id === this.inFlight) this.inFlight = null;
    this.streaming = null;
    this.setStep("");
    this.showAlert(humanMessage(frame));
    this.setBusy(false);
    this.render();
  }

  watch(runId) {
    if (runId) this.watched.add(runId);
  }

  // The status line under the log: the current step, or a note that the model is slow.
  setStep(text) {
    this.stepText = text;
    this.steps.textContent = this.waiting ? "Still waiting for the model…" : text;
  }

  /** A word of the answer or a tool call: restart the wait before the slow-model note. */
  heard() {
    clearTimeout(this.waitTimer);
    if (this.waiting) {
      this.waiting = false;
      this.setStep(this.stepText);
    }
    if (!this.busy) return;
    this.waitTimer = setTimeout(() => {
      this.waiting = true;
      this.setStep(this.stepText);
    }, WAIT_HINT_MS);
  }

  stopWaiting() {
    clearTimeout(this.waitTimer);
    this.waiting = false;
    this.setStep(this.stepText ?? "");
  }

  /** Show a problem; "connection" ones go away by themselves once the server answers again. */
  showAlert(text, kind = "error") {
    this.alert.textContent = text;
    this.alert.dataset.kind = kind;
    this.alert.hidden = false;
  }

  hideAlert(kind) {
    if (kind && this.alert.dataset.kind !== kind) return;
    this.alert.hidden = true;
    this.alert.textContent = "";
    delete this.alert.dataset.kind;
  }

  render() {
    const stick = this.nearBottom();
    const ordered = [...this.messages.values()].sort((a, b) => a.seq - b.seq);
    // Answered: an answer names it (reply_to), or (imported threads name none) one follows it.
    const answered = new Set(ordered.map((m) => m.reply_to).filter(Boolean));
    for (let i = 1; i < ordered.length; i++) {
      if (ordered[i].role === "assistant") answered.add(ordered[i - 1].id);
    }
    const last = ordered.at(-1);
    // The last question, and its answer when that is the last message, can be redone.
    const question = ordered.findLast((m) => m.role === "user");
    const redoable = Boolean(question) && !this.busy && ordered.indexOf(question) >= ordered.length - 2;
    const nodes = ordered.map((m) => {
      if (redoable && m === question && this.editing?.id === m.id) return this.editorNode(m);
      const node = this.messageNode(m);
      if (redoable && m === question) node.querySelector(".msg-meta").append(actionButton("Edit", () => this.startEdit(m)));
      if (redoable && m === last && m.role === "assistant") {
        const regenerate = actionButton("Regenerate", () => this.regenerate(question));
        (node.querySelector(".msg-meta") || node.appendChild(this.actions())).append(regenerate);
      }
      // A question with no answer: its turn failed, or was cut off with nobody
      // watching. The last one can be asked again (same id: nothing doubles).
      const beingAnswered = m === last && (this.busy || this.inFlight === m.id);
      if (m.role === "user" && !answered.has(m.id) && !beingAnswered) {
        node.append(this.unansweredNote(m, m === last));
      }
      return node;
    });
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
    renderMarkdown(node.querySelector(".body"), this.streaming.text, { guessLanguages: false });
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
    p.textContent = this.emptyText?.() || "Ask anything.";
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
    if (this.streaming?.partial) {
      const node = this.bubble("assistant streaming in-progress", "");
      node.querySelector(".body").textContent = IN_PROGRESS;
      node.setAttribute("aria-busy", "true");
      return node;
    }
    const node = this.bubble("assistant streaming", this.streaming ? this.streaming.text : "");
    node.setAttribute("aria-busy", "true");
    return node;
  }

  messageNode(m) {
    const node = this.bubble(`${m.role}${m.has_error ? " error" : ""}`, m.content, m.id);
    node.dataset.seq = m.seq;
    if (m.role !== "assistant") {
      node.append(this.actions(copyButton("Copy message", () => m.content)));
      return node;
    }
    const meta = answerMeta(m, (details, box) => this.keepOpen(details, `${m.id}:${box}`));
    if (meta) node.append(meta);
    return node;
  }

  unansweredNote(question, canRetry) {
    const note = document.createElement("p");
    note.className = "unanswered";
    note.textContent = "Not answered.";
    if (!canRetry) return note;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "retry";
    button.textContent = "Retry";
    button.addEventListener("click", () => this.retry(question));
    note.append(" ", button);
    return note;
  }

  actions(...buttons) {
    const row = document.createElement("div");
    row.className = "msg-meta";
    row.append(...buttons);
    return row;
  }

  editorNode(question) {
    const node = document.createElement("form");
    node.className = "msg user editing";
    const box = document.createElement("textarea");
    box.setAttribute("aria-label", "Edit your message");
    box.value = this.editing.text;
    box.addEventListener("input", () => (this.editing.text = box.value));
    const save = document.createElement("button");
    save.type = "submit";
    save.className = "primary";
    save.textContent = "Save and send";
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.textContent = "Cancel";
    cancel.addEventListener("click", () => {
      this.editing = null;
      this.render();
    });
    node.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submitEdit(question, box.value);
    });
    node.append(box, this.actions(save, cancel));
    queueMicrotask(() => box.focus());
    return node;
  }

  startEdit(question) {
    this.editing = { id: question.id, text: question.content };
    this.render();
  }

  /** The last question in new words: the server takes it and its answer out, then asks. */
  submitEdit(question, text) {
    if (!text.trim() || this.busy) return;
    const id = crypto.randomUUID();
    this.editing = null;
    this.hideAlert();
    this.pending.set(id, text);
    this.setBusy(true);
    this.sendFrame({ type: "edit", id: question.id, new_id: id, content: text });
    this.render();
  }

  /** A new answer to the last question, in place of the one it has. */
  regenerate(question) {
    if (this.busy) return;
    this.hideAlert();
    this.inFlight = question.id;
    this.setBusy(true);
    this.sendFrame({ type: "regenerate", id: question.id });
    this.render();
  }

  on_retracted(frame) {
    for (const id of frame.ids) this.messages.delete(id);
    this.render();
  }

  /** Ask a question again under its own id: the server runs it only if it has no answer. */
  retry(question) {
    if (this.busy) return;
    this.hideAlert();
    this.inFlight = question.id;
    this.setBusy(true);
    this.resend(question.id, question.content);
    this.render();
  }

  /** A <details> that stays open across re-renders once the reader opened it. */
  keepOpen(details, key) {
    details.open = this.openDetails.has(key);
    details.addEventListener("toggle", () => (details.open ? this.openDetails.add(key) : this.openDetails.delete(key)));
    return details;
  }
}

function actionButton(text, onClick) {
  const button = Object.assign(document.createElement("button"), { type: "button", className: "copy", textContent: text });
  button.addEventListener("click", onClick);
  return button;
}

function humanName(name) {
  return String(name).replaceAll("_", " ");
}

// `(query: "…")` for a tool's first argument, short.
function argumentsNote(args) {
  const first = args && typeof args === "object" ? Object.entries(args)[0] : null;
  if (!first) return "";
  const value = String(first[1]);
  return ` (${humanName(first[0])}: “${value.length > 40 ? `${value.slice(0, 40)}…` : value}”)`;
}
