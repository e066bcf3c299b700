// What to tell a person when something fails. The server answers with a code
// and a message written for developers (for bad input, pydantic's own words,
// such as "body.email: String should match pattern '…'"); the page shows these.

const BY_CODE = {
  network: "Can't reach the server. Check your connection; this note goes away once it is back.",
  invalid_credentials: "Wrong email or password.",
  email_taken: "There is already an account with this email. Log in instead.",
  wrong_password: "That password is not right.",
  rate_limited: "Too many attempts in a short time. Wait a minute, then try again.",
  busy: "This conversation is still answering (perhaps in another tab). Wait for it to finish, then send again.",
  model_unavailable: "The model is unavailable right now. Your message is saved: press Retry under it to ask again.",
  database_unavailable: "The server can't reach its database right now. Try again in a moment.",
  shutting_down: "The server is restarting. Try again in a moment.",
  not_found: "That conversation does not exist (or is not yours).",
  unauthorized: "Please log in again.",
  frame_too_large: "That message is too long to send.",
  message_id_conflict: "That message could not be sent. Please send it again.",
  internal: "Something went wrong on the server. Please try again.",
};

const FIELDS = {
  email: "The email address",
  password: "The password",
  new_password: "The new password",
  current_password: "The current password",
  display_name: "The name",
  content: "The text",
  title: "The title",
  key: "The name",
};

// One problem as pydantic words it, to a sentence; `field` is already human.
const PROBLEMS = [
  [/should match pattern/i, (field) => (field === FIELDS.email ? "Enter a valid email address, like name@example.com." : `${field} has a form that is not accepted.`)],
  [/should have at least 1 (character|item)\b/i, (field) => `${field} can't be empty.`],
  [/should have at least (\d+) characters?/i, (field, m) => `${field} must be at least ${m[1]} characters long.`],
  [/should have at most (\d+) characters?/i, (field, m) => `${field} must be at most ${m[1]} characters long.`],
  [/should have at least (\d+) items?/i, (field, m) => `${field} must have at least ${m[1]} entries.`],
  [/should have at most (\d+) items?/i, (field, m) => `${field} must have at most ${m[1]} entries.`],
  [/^field required$/i, (field) => `${field} is required.`],
  [/^value error, (.*)$/i, (_, m) => sentence(m[1])],
  [/message is longer than (\d+) characters/i, (_, m) => `Your message is too long: the limit is ${Number(m[1]).toLocaleString()} characters.`],
  [/message is empty/i, () => "Type a message first."],
  [/NUL byte|lone surrogate/i, () => "The text contains a character that can't be saved. Remove it and try again."],
];

/** A sentence a person can act on, for an ApiError, an error frame or a thrown Error. */
export function humanMessage(error) {
  const code = error?.code;
  const message = String(error?.message ?? "");
  if (code === "invalid_input" || code === "invalid_frame") return inputProblems(message);
  if (code && BY_CODE[code]) return BY_CODE[code];
  if (error instanceof TypeError) return BY_CODE.network; // fetch's "Failed to fetch"
  return message ? sentence(message) : "Something went wrong. Please try again.";
}

function inputProblems(message) {
  // "body.email: …; body.password: …": one problem per field (a problem may hold "; " itself)
  const sentences = message.split(/; (?=\w+(?:\.\w+)*: )/).map(problem);
  return [...new Set(sentences)].join(" ");
}

function problem(text) {
  const [, where, what] = text.match(/^([\w.]+): (.*)$/s) || [null, "", text];
  const name = where.split(".").pop();
  const field = FIELDS[name] || (name && !/^\d+$/.test(name) ? `The ${name.replaceAll("_", " ")}` : "This");
  for (const [pattern, say] of PROBLEMS) {
    const match = what.match(pattern);
    if (match) return say(field, match);
  }
  return sentence(what);
}

function sentence(text) {
  const trimmed = text.trim();
  if (!trimmed) return "";
  const capital = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?…]$/.test(capital) ? capital : `${capital}.`;
}
