// What is shown under an answer: a copy button, whether it was stopped or
// failed, the memories it used (with where each was learned) and its steps.
import { copyButton } from "./clipboard.js";
import { stepsDetails, traceOf } from "./steps.js";

/** The row under an assistant message, or null when there is nothing to show.
 * `keepOpen(details, box)` lets the view keep a box open across re-renders. */
export function answerMeta(message, keepOpen) {
  const meta = document.createElement("div");
  meta.className = "msg-meta";
  if (message.content) meta.append(copyButton("Copy answer", () => message.content));
  if (message.cancelled) meta.append(label("stopped"));
  if (message.has_error) meta.append(label(message.error_message || "error"));
  if (message.limit_reached) meta.append(label("step limit reached"));
  const used = Array.isArray(message.memories_used) ? message.memories_used : [];
  if (used.length) meta.append(keepOpen(memoryChip(used), "memories"));
  const trace = traceOf(message);
  if (trace) meta.append(keepOpen(stepsDetails(trace), "steps"));
  return meta.childNodes.length ? meta : null;
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
