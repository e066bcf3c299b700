// Markdown for answers. An answer comes from a model (which a prompt can steer)
// or from an imported file, so it is hostile input: raw HTML in it is shown as
// text, a remote image becomes a link the user may click (loading it would tell
// its server what the page contains), and DOMPurify keeps only the Markdown subset.
import { Marked } from "../vendor/marked.esm.js";
import DOMPurify from "../vendor/purify.esm.js";

const MARKDOWN_TAGS = [
  "p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "code", "pre", "blockquote",
  "em", "strong", "del", "a", "table", "thead", "tbody", "tr", "th", "td", "hr", "br",
];
const PURIFY = {
  ALLOWED_TAGS: MARKDOWN_TAGS,
  ALLOWED_ATTR: ["href", "title", "align", "start"], // align: table columns; start: numbered lists
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

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName !== "A") return;
  if (!node.hasAttribute("href")) return;
  node.setAttribute("target", "_blank");
  node.setAttribute("rel", "noopener noreferrer");
});

export function renderMarkdown(element, text) {
  element.innerHTML = DOMPurify.sanitize(markdown.parse(text || ""), PURIFY);
}
