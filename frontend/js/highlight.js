// Syntax highlighting for code blocks: highlight.js core with the languages
// answers most often show (vendor/refresh.sh lists them). Each grammar brings
// its aliases, so ```js, ```py, ```sh and ```html work too.
import hljs from "../vendor/highlight/core.js";
import bash from "../vendor/highlight/languages/bash.min.js";
import c from "../vendor/highlight/languages/c.min.js";
import cpp from "../vendor/highlight/languages/cpp.min.js";
import css from "../vendor/highlight/languages/css.min.js";
import diff from "../vendor/highlight/languages/diff.min.js";
import go from "../vendor/highlight/languages/go.min.js";
import java from "../vendor/highlight/languages/java.min.js";
import javascript from "../vendor/highlight/languages/javascript.min.js";
import json from "../vendor/highlight/languages/json.min.js";
import markdown from "../vendor/highlight/languages/markdown.min.js";
import python from "../vendor/highlight/languages/python.min.js";
import rust from "../vendor/highlight/languages/rust.min.js";
import shell from "../vendor/highlight/languages/shell.min.js";
import sql from "../vendor/highlight/languages/sql.min.js";
import typescript from "../vendor/highlight/languages/typescript.min.js";
import xml from "../vendor/highlight/languages/xml.min.js";
import yaml from "../vendor/highlight/languages/yaml.min.js";

const GRAMMARS = { bash, c, cpp, css, diff, go, java, javascript, json, markdown, python, rust, shell, sql, typescript, xml, yaml };
for (const [name, grammar] of Object.entries(GRAMMARS)) hljs.registerLanguage(name, grammar);

// Below this, a guessed language is more often wrong than right: leave the block plain.
const GUESS_MIN_RELEVANCE = 5;

/** The code as highlighted HTML (spans with hljs-* classes, text escaped by
 * highlight.js) and the language used; null when it should stay plain. */
export function highlightCode(text, language) {
  if (language) {
    if (!hljs.getLanguage(language)) return null; // ```text, or a language we don't ship
    const result = hljs.highlight(text, { language, ignoreIllegals: true });
    return { html: result.value, language: hljs.getLanguage(language).name };
  }
  const guess = hljs.highlightAuto(text);
  if (!guess.language || guess.relevance < GUESS_MIN_RELEVANCE) return null;
  return { html: guess.value, language: hljs.getLanguage(guess.language).name };
}
