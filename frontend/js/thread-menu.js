// The "…" menu of a conversation row: one popover for the whole list, filled
// with the row's actions when opened. The popover sits in the top layer (never
// clipped by the scrolling list), closes by itself on Escape or a click
// elsewhere and then gives focus back to its "…" button; arrow keys move
// between its items.

export class ThreadMenu {
  constructor(element, onClose) {
    this.element = element;
    this.onClose = onClose;
    this.trigger = null;
    element.addEventListener("beforetoggle", (event) => {
      if (event.newState === "closed") this.closed();
    });
    element.addEventListener("toggle", (event) => {
      if (event.newState === "closed") this.onClose?.(); // now closed: what waited for it may redraw
    });
    element.addEventListener("keydown", (event) => this.key(event));
  }

  /** Make `trigger` open the menu with `actions()`: {label, run} buttons or
   * {label, href} downloads. A click on the trigger of the open menu closes it. */
  attach(trigger, actions) {
    let wasOpen = false; // noted before the click outside the popover closes it
    trigger.addEventListener("pointerdown", () => (wasOpen = this.trigger === trigger));
    trigger.addEventListener("click", () => {
      if (wasOpen || this.trigger === trigger) {
        wasOpen = false;
        this.close();
        return;
      }
      this.open(trigger, actions());
    });
  }

  open(trigger, actions) {
    this.close();
    this.element.replaceChildren(...actions.map((action) => this.item(action)));
    this.trigger = trigger;
    trigger.setAttribute("aria-expanded", "true");
    this.element.showPopover();
    this.place(trigger);
    this.items()[0]?.focus();
  }

  item({ label, run, href, danger }) {
    const item = document.createElement(href ? "a" : "button");
    item.setAttribute("role", "menuitem");
    item.textContent = label;
    item.tabIndex = -1;
    if (danger) item.className = "danger";
    if (href) {
      item.href = href;
      item.setAttribute("download", "");
      item.addEventListener("click", () => this.close());
    } else {
      item.type = "button";
      item.addEventListener("click", () => {
        this.close();
        run();
      });
    }
    return item;
  }

  items() {
    return [...this.element.querySelectorAll("[role=menuitem]")];
  }

  place(trigger) {
    const anchor = trigger.getBoundingClientRect();
    const menu = this.element.getBoundingClientRect();
    const left = Math.max(8, Math.min(anchor.right - menu.width, innerWidth - menu.width - 8));
    const below = anchor.bottom + 4;
    const top = below + menu.height > innerHeight - 8 ? Math.max(8, anchor.top - menu.height - 4) : below;
    Object.assign(this.element.style, { left: `${left}px`, top: `${top}px` });
  }

  key(event) {
    const items = this.items();
    const at = items.indexOf(document.activeElement);
    const moves = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: items.length - 1 };
    if (!(event.key in moves)) return;
    event.preventDefault();
    items[(moves[event.key] + items.length) % items.length]?.focus();
  }

  isOpen() {
    return this.element.matches(":popover-open");
  }

  close() {
    if (this.isOpen()) this.element.hidePopover();
  }

  closed() {
    this.trigger?.setAttribute("aria-expanded", "false");
    this.trigger = null;
  }
}
