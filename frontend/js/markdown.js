// Markdown for answers. An answer comes from a model (which a prompt can steer)
// or from an imported file, so it is hostile input: raw HTML in it is shown as
// text, a remote image becomes a link the user may click (loading it would tell
// its server what the page contains), and DOMPurify keeps only the Markdown subset.
// Code blocks are then highlighted and given a copy button.
import { Marked } from "../vendor/marked.esm.js";
import DOMPurify from "../vendor/purify.esm.js";
import { copyButton } from "./clipboard.js";
import { highlightCode } from "./highlight.js";

const MARKDOWN_TAGS = [
  "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "code", "pre", "blockquote",
  "em", "strong", "del", "a", "table", "thead", "tbody", "tr", "th", "td", "hr", "br",
];
const PURIFY = {
  ALLOWED_TAGS: MARKDOWN_TAGS,
  // align: table columns; start: numbered lists; class: only the two shapes the hook below keeps
  ALLOWED_ATTR: ["href", "title", "align", "start", "class"],
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
};

const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = (text) => String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]);

function remoteUrl(href) {
  try {
    const url = new URL(href);
    return url.protocol === "https:" || url.protocol === "http:" ? url : null;
  } catch {
    return null;
  }
}

const markdown = new Marked({
  gfm: true,
  breaks: true,
  renderer: {
    html({ text, block }) {
      return block ? `<p>${escapeHtml(text)}</p>` : escapeHtml(text);
    },
    checkbox({ checked }) {
      return checked ? "☑ " : "☐ "; // task lists, without form controls
    },
    image({ href, title, text, tokens }) {
      const alt = tokens ? this.parser.parseInline(tokens, this.parser.textRenderer) : text;
      const url = remoteUrl(href);
      if (!url) return escapeHtml(alt);
      const label = `Image: ${alt || "untitled"} (${url.host}), opens on click`;
      return `<a href="${escapeHtml(url.href)}" title="${escapeHtml(title || url.href)}">${escapeHtml(label)}</a>`;
    },
  },
});

// What highlight.js makes of a code block's text: spans with its classes, nothing else.
const HIGHLIGHTED = { ALLOWED_TAGS: ["span"], ALLOWED_ATTR: ["class"], ALLOW_DATA_ATTR: false, ALLOW_ARIA_ATTR: false };
const CODE_LANGUAGE = /^language-([\w+#.-]{1,40})$/; // marked's class on a fenced block
const HIGHLIGHT_CLASSES = /^(?:hljs-[\w-]+|[a-z]+_+)(?: (?:hljs-[\w-]+|[a-z]+_+))*$/; // "hljs-title class_ inherited__"

DOMPurify.addHook("uponSanitizeAttribute", (node, data) => {
  if (data.attrName !== "class") return;
  const shape = node.tagName === "CODE" ? CODE_LANGUAGE : node.tagName === "SPAN" ? HIGHLIGHT_CLASSES : null;
  if (!shape || !shape.test(data.attrValue)) data.keepAttr = false;
});

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName !== "A") return;
  if (!node.hasAttribute("href")) return;
  node.setAttribute("target", "_blank");
  node.setAttribute("rel", "noopener noreferrer");
});

/** Render `text` into `element`. While an answer streams in (`guessLanguages`
 * false), a block without a named language is not guessed at every word. */
export function renderMarkdown(element, text, { guessLanguages = true } = {}) {
  element.innerHTML = DOMPurify.sanitize(markdown.parse(text || ""), PURIFY);
  for (const code of element.querySelectorAll("pre > code")) decorateCodeBlock(code, guessLanguages);
}

/** Highlight a fenced block and put it in a frame with its language and a copy button. */
function decorateCodeBlock(code, guessLanguages) {
  const source = code.textContent.replace(/\n$/, ""); // marked ends every block with a newline
  const named = code.className.match(CODE_LANGUAGE)?.[1].toLowerCase();
  const highlighted = named || guessLanguages ? highlightCode(source, named) : null;
  if (highlighted) {
    code.innerHTML = DOMPurify.sanitize(highlighted.html, HIGHLIGHTED);
    code.className = "hljs";
  }
  const pre = code.parentElement;
  const frame = document.createElement("div");
  frame.className = "code-block";
  const head = document.createElement("div");
  head.className = "code-head";
  const language = named || highlighted?.language || "text";
  head.append(
    Object.assign(document.createElement("span"), { className: "code-lang", textContent: language }),
    copyButton(`Copy ${language} code`, () => source, "copy code-copy"),
  );
  pre.replaceWith(frame);
  frame.append(head, pre);
}
