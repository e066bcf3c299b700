// Copy buttons. The Clipboard API needs a secure context (https or localhost);
// on a plain-http LAN address the older execCommand path still works.

async function writeText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = Object.assign(document.createElement("textarea"), { value: text, readOnly: true });
  area.className = "offscreen";
  document.body.append(area);
  area.select();
  const copied = document.execCommand("copy");
  area.remove();
  if (!copied) throw new Error("copy refused");
}

/** A button that copies `text()` and says so for a moment. */
export function copyButton(labelText, text, className = "copy") {
  const button = Object.assign(document.createElement("button"), { type: "button", className, textContent: "Copy" });
  button.setAttribute("aria-label", labelText);
  let timer;
  button.addEventListener("click", async () => {
    clearTimeout(timer);
    try {
      await writeText(text());
      button.textContent = "Copied";
    } catch {
      button.textContent = "Copy failed";
    }
    timer = setTimeout(() => (button.textContent = "Copy"), 1500);
  });
  return button;
}
