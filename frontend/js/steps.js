// The steps an answer took: its route through the graph (planning → execution →
// … → response), what each plan said, and each tool call with its arguments and
// result. Read from the journaled answer only (`steps` or `metadata.steps`,
// `tools_used`), so what is shown live is what a reload shows. Every field is
// optional: old messages and imported ones may have none of them, or other shapes.

/** The trace to show for a message ({steps, tools}), or null when there is nothing to show. */
export function traceOf(message) {
  const trace = {
    steps: listOf(message.steps ?? message.metadata?.steps).filter((s) => s && typeof s.node === "string"),
    tools: listOf(message.tools_used).map(toolCall).filter(Boolean),
    plan: message.metadata?.plan ?? message.plan,
  };
  return trace.steps.length || trace.tools.length ? trace : null;
}

/** A collapsed "Steps" box: the route, the plans, and each tool call (collapsed too). */
export function stepsDetails(trace) {
  const details = element("details", "trace");
  const tools = trace.tools.length ? ` · ${trace.tools.length} ${trace.tools.length === 1 ? "tool" : "tools"}` : "";
  details.append(element("summary", "chip", `Steps${tools}`));
  const route = trace.steps.map((s) => s.node).filter((node) => node !== "initialize");
  // The response node journals the steps before it ends, so they never list it; it ran all the same.
  if (route.length && route.at(-1) !== "response") route.push("response");
  if (route.length) details.append(element("p", "trace-route", route.join(" → ")));
  const notes = trace.steps.map(stepNote).filter(Boolean);
  if (notes.length) {
    const list = element("ol", "trace-steps");
    for (const note of notes) list.append(element("li", "", note));
    details.append(list);
  }
  if (trace.tools.length) {
    const list = element("ul", "trace-tools");
    for (const call of trace.tools) list.append(element("li", "", "", toolDetails(call)));
    details.append(list);
  }
  return details;
}

function stepNote(step) {
  if (step.node === "initialize") return ""; // saving the question: not a step of the answer
  const time = duration(step.ms);
  if (step.node === "planning" && step.plan) {
    return `planning: ${String(step.plan)}${step.reason ? ` (${String(step.reason)})` : ""}${time}`;
  }
  const tools = listOf(step.tools).map(String);
  if (step.node === "execution" && tools.length) return `execution: ${tools.join(", ")}${time}`;
  return time ? `${step.node}${time}` : "";
}

function toolDetails(call) {
  const details = element("details", "tool-call");
  const status = call.ok === false ? " — failed" : call.ok === true ? "" : " — running";
  details.append(element("summary", "", `${call.name}${status}${duration(call.ms)}`));
  if (call.args && typeof call.args === "object" && Object.keys(call.args).length) {
    details.append(element("div", "trace-label", "Arguments"), element("pre", "", JSON.stringify(call.args, null, 2)));
  }
  if (call.result !== undefined && call.result !== null && call.result !== "") {
    details.append(element("div", "trace-label", "Result"), element("pre", "", String(call.result)));
  }
  return details;
}

function toolCall(entry) {
  if (typeof entry === "string") return { name: entry };
  if (!entry || typeof entry !== "object") return null;
  return { name: String(entry.name ?? "tool"), args: entry.args, ok: entry.ok, result: entry.result, ms: entry.ms };
}

function duration(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms)) return "";
  if (ms >= 1000) return ` · ${(ms / 1000).toFixed(1)} s`;
  return ` · ${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

function listOf(value) {
  return Array.isArray(value) ? value : [];
}

function element(tag, className, text = "", ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  node.append(...children);
  return node;
}
