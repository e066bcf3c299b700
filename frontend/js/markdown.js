// Markdown for answers: marked to HTML, DOMPurify to keep only safe HTML.
import { marked } from "../vendor/marked.esm.js";
import DOMPurify from "../vendor/purify.esm.js";

marked.setOptions({ gfm: true, breaks: true });

export function renderMarkdown(element, text) {
  element.innerHTML = DOMPurify.sanitize(marked.parse(text || ""));
}
