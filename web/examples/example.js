// example.js: what every example page shares. ?storage=local keeps the login in localStorage
// (every tab of this origin shares it; the default, sessionStorage, is per tab), ?with=jid sets
// the chat's peer. The gateway is always this page's own origin: a URL parameter naming another
// gateway would let a crafted link send the typed password to any host.
import { Sparkgate } from "/sparkweb/sparkgate.js";

const q = new URLSearchParams(location.search);
const opts = {};
if (q.get("storage")) opts.storage = q.get("storage");
const sg = Object.keys(opts).length ? Sparkgate.configure(opts) : Sparkgate.shared();
await import("/sparkweb/sparkgate-elements.js");

const chat = document.querySelector("sparkgate-chat");
if (chat && q.get("with")) chat.setAttribute("with", q.get("with"));

const out = document.getElementById("signout");
if (out) {
  const sync = () => (out.hidden = !sg.loggedIn);
  sg.on("login", sync);
  sg.on("logout", sync);
  sync();
  out.addEventListener("click", () => sg.logout());
}
window.sparkgate = sg; // for the console (and the browser tests)
