// Log in, register (then log in), log out; the account corner of the top bar.
import { api } from "./api.js";
import { humanMessage } from "./errors.js";

export class AuthDialog {
  constructor(dialog) {
    this.dialog = dialog;
    this.form = dialog.querySelector("#auth-form");
    this.error = dialog.querySelector(".form-error");
    dialog.querySelector("#auth-switch").addEventListener("click", () => this.setMode(this.mode === "login" ? "register" : "login"));
    dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
    this.form.addEventListener("submit", (event) => this.submit(event));
  }

  setMode(mode) {
    this.mode = mode;
    const registering = mode === "register";
    this.dialog.querySelector("#auth-title").textContent = registering ? "Create an account" : "Log in";
    this.dialog.querySelector("#auth-submit").textContent = registering ? "Register" : "Log in";
    this.dialog.querySelector("#auth-switch").textContent = registering ? "I have an account: log in" : "Create an account instead";
    this.dialog.querySelector("#display-name-row").hidden = !registering;
    this.form.password.autocomplete = registering ? "new-password" : "current-password";
    this.error.textContent = "";
  }

  open(mode) {
    this.setMode(mode);
    this.dialog.showModal();
    return new Promise((resolve) => (this.resolve = resolve));
  }

  async submit(event) {
    event.preventDefault();
    const { email, password, display_name } = this.form;
    try {
      if (this.mode === "register") await api.register(email.value, password.value, display_name.value.trim());
      const { user } = await api.login(email.value, password.value);
      this.form.reset();
      this.dialog.close();
      this.resolve?.(user);
    } catch (error) {
      this.error.textContent = humanMessage(error);
    }
  }
}

export function renderAccount(container, user, { onLogin, onRegister, onLogout, onKeys }) {
  container.replaceChildren();
  if (user) {
    const who = Object.assign(document.createElement("span"), { className: "who", textContent: user.display_name || user.email });
    const keys = Object.assign(document.createElement("button"), { type: "button", textContent: "API keys" });
    keys.addEventListener("click", onKeys);
    const out = Object.assign(document.createElement("button"), { type: "button", textContent: "Log out" });
    out.addEventListener("click", onLogout);
    container.append(who, keys, out);
    return;
  }
  const login = Object.assign(document.createElement("button"), { type: "button", textContent: "Log in" });
  const register = Object.assign(document.createElement("button"), { type: "button", textContent: "Register", className: "primary" });
  login.addEventListener("click", onLogin);
  register.addEventListener("click", onRegister);
  container.append(login, register);
}
