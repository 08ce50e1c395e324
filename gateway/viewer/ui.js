// Small DOM helpers: status line, error banner, who-is-here list, chat panel. Text is always
// set with textContent (never innerHTML): names, chat lines and reasons come from strangers.

export const $ = (sel) => document.querySelector(sel);

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "dataset") Object.assign(e.dataset, v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

// The message of a gateway's JSON error body ({error: {code, message}} or {code, message}).
export function errorMessage(body, status) {
  return body?.error?.message ?? body?.message ?? `the node answered ${status}`;
}

export function shortAddress(a) {
  return typeof a === "string" && a.length > 12 ? `${a.slice(0, 6)}…${a.slice(-4)}` : a ?? "?";
}

export function setState(state, text) {
  document.body.dataset.state = state;
  if (text !== undefined) $("#status").textContent = text;
}

// A failure the visitor must see (verification error, denied entry). `kind` names it for
// tests and styles: "verification", "denied", "network", "error".
export function showError(kind, message) {
  const box = $("#error");
  box.dataset.kind = kind;
  box.textContent = message;
  box.hidden = false;
  document.body.dataset.error = kind;
}

// `voice(visitor)`: "speaking" | "silenced" | null, shown as a mark (data-voice) after the name;
// data-direct says the peer's transforms come straight over the mesh. `silence(visitor)`, given
// only to the world's owner, adds a button per peer that silences it (or lets it speak again).
export function renderWho(me, peers, voice = () => null, silence = null, silenced = () => false) {
  const list = $("#who");
  const mark = (v) => voice(v) ?? "";
  const row = (p) => {
    const li = el("li", {
      dataset: { visitor: p.visitor, address: p.address ?? "", voice: mark(p.visitor),
        direct: p.direct ? "1" : "0",
        position: p.transform ? p.transform.position.map((c) => c.toFixed(2)).join(",") : "" },
      text: shortAddress(p.address ?? p.visitor) + (p.transform ? "" : " (far away)"),
    });
    if (silence !== null) {
      const button = el("button", { class: "silence", text: silenced(p.visitor) ? "Let speak" : "Silence" });
      button.addEventListener("click", () => silence(p.visitor));
      li.append(" ", button);
    }
    return li;
  };
  list.replaceChildren(
    el("li", { dataset: { visitor: me.visitor, address: me.address, self: "1", voice: mark(me.visitor) },
      text: `${shortAddress(me.address)} (you)` }),
    ...peers.map(row),
  );
  $("#who-count").textContent = String(peers.length + 1);
}

export function appendChat(line, mine) {
  const log = $("#chat-log");
  const when = new Date(line.sentMs).toLocaleTimeString();
  log.append(el("li", { dataset: { visitor: line.visitor, mine: mine ? "1" : "0" }, title: when },
    el("b", { text: shortAddress(line.address ?? line.visitor) + ": " }),
    el("span", { class: "text", text: line.text })));
  log.scrollTop = log.scrollHeight;
}

export function notice(text) {
  const log = $("#chat-log");
  log.append(el("li", { class: "notice", text }));
  log.scrollTop = log.scrollHeight;
}
