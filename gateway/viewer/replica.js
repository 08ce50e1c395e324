// The page's replica of its instance (like fluxnode.client.replica): peers from ViewerFrames,
// world state as last-writer-wins registers, chat. Relayed ops and chat lines are re-checked
// against the session key their author's visitor id names, so a misbehaving node cannot make
// the page show a change nobody signed.
import { ed25519, sha256 } from "./vendor/vendor.js";
import { canonical, chatSigningBytes, HlcClock, opSigningBytes, verifyOp } from "./ops.js";
import { fromB64url } from "./wallet.js";

const HISTORY = 32;

function visitorKey(visitor) {
  if (!/^[A-Za-z0-9_-]{43}$/.test(visitor)) return null;
  try { return fromB64url(visitor); } catch { return null; }
}

function compareBytes(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

// fluxnode.core.session.state._order: (hlc, sha256(signing_bytes + signature)).
function order(a, b) {
  const ha = a.hlc, hb = b.hlc;
  if (ha.wallMs !== hb.wallMs) return ha.wallMs - hb.wallMs;
  if (ha.counter !== hb.counter) return ha.counter - hb.counter;
  if (ha.actor !== hb.actor) return ha.actor < hb.actor ? -1 : 1;
  const digest = (op) => {
    const body = opSigningBytes(op);
    const all = new Uint8Array(body.length + op.signature.length);
    all.set(body); all.set(op.signature, body.length);
    return sha256(all);
  };
  return compareBytes(digest(a), digest(b));
}

export class Replica {
  constructor(visitor, address) {
    this.visitor = visitor;
    this.address = address;
    this.author = address.toLowerCase();
    this.clock = new HlcClock(visitor);
    this.reset(null);
  }

  reset(instance) {
    this.instance = instance;
    this.states = new Map(); // seq -> Map(visitor -> transform | null)
    this.latest = null;
    this.addresses = new Map();
    this.registers = new Map(); // "object\u0000prop" -> op
    this.chat = [];
    this.seenChat = new Set();
    this.resyncAsked = false;
    this.direct = new Map(); // visitor -> transform, straight from the peer (mesh)
  }

  // --- peers -----------------------------------------------------------------------------
  // Returns [reply] where reply is "ack" | "resync" | null, plus whether the view changed.
  applyFrame(frame) {
    let state;
    if (frame.base === null) state = new Map();
    else if (this.states.has(frame.base)) state = new Map(this.states.get(frame.base));
    else {
      if (this.resyncAsked) return { reply: null, changed: false };
      this.resyncAsked = true;
      return { reply: "resync", changed: false };
    }
    if (frame.base === null) this.resyncAsked = false;
    for (const v of frame.removed) { state.delete(v); this.direct.delete(v); }
    for (const [v, t] of Object.entries(frame.changed)) state.set(v, t);
    for (const [v, info] of Object.entries(frame.info)) {
      if (typeof info?.address === "string") this.addresses.set(v, info.address);
    }
    this.states.set(frame.seq, state);
    const newest = this.latest === null || frame.seq > this.latest;
    if (newest) this.latest = frame.seq;
    for (const s of this.states.keys()) if (s < frame.seq - HISTORY) this.states.delete(s);
    return { reply: "ack", changed: newest };
  }

  // Who is here: the node's latest frame, with the transforms mesh peers sent us directly
  // in place of (or besides: the node leaves mesh peers out of our frames) relayed ones.
  peers() {
    const now = new Map(this.latest === null ? [] : this.states.get(this.latest));
    for (const [v, t] of this.direct) now.set(v, t);
    return [...now.entries()].filter(([v]) => v !== this.visitor)
      .map(([visitor, transform]) => ({ visitor, transform, address: this.addresses.get(visitor) ?? null,
        direct: this.direct.has(visitor) }));
  }

  // A mesh peer's transform; true (the view changes) unless it is us.
  setDirect(visitor, transform) {
    if (visitor === this.visitor) return false;
    this.direct.set(visitor, transform);
    return true;
  }

  // Forget direct transforms of peers whose data channel closed; true if any went.
  keepDirect(connected) {
    let gone = false;
    for (const v of [...this.direct.keys()]) if (!connected.has(v)) { this.direct.delete(v); gone = true; }
    return gone;
  }

  addressOf(visitor) {
    return visitor === this.visitor ? this.address : this.addresses.get(visitor) ?? null;
  }

  // --- state -----------------------------------------------------------------------------
  value(object, prop) {
    const op = this.registers.get(object.id + "\u0000" + prop);
    if (op !== undefined) return op.value;
    return object.properties?.[prop];
  }

  // Merge a signed op; true when it now holds its register (the view should change).
  receiveOp(op) {
    const key = visitorKey(op.hlc?.actor ?? "");
    if (key === null || !(op.signature instanceof Uint8Array) || !verifyOp(op, key)) return false;
    const known = this.addresses.get(op.hlc.actor);
    if (known && known.toLowerCase() !== op.author) return false;
    const reg = op.objectId + "\u0000" + op.prop;
    const held = this.registers.get(reg);
    this.clock.observe(op.hlc);
    if (held !== undefined && order(held, op) >= 0) return false;
    this.registers.set(reg, op);
    return true;
  }

  // --- chat ------------------------------------------------------------------------------
  receiveChat(m) {
    if (this.instance !== null && m.instance !== this.instance) return null;
    const key = visitorKey(m.author);
    if (key === null) return null;
    let ok = false;
    try { ok = ed25519.verify(m.signature, chatSigningBytes(m), key); } catch { ok = false; }
    if (!ok) return null;
    const id = canonical([m.author, m.sentMs, m.text]);
    if (this.seenChat.has(id)) return null;
    this.seenChat.add(id);
    const line = { visitor: m.author, address: this.addressOf(m.author), text: m.text, sentMs: m.sentMs };
    this.chat.push(line);
    this.chat.sort((a, b) => a.sentMs - b.sentMs);
    this.chat.splice(0, Math.max(0, this.chat.length - 200));
    return line;
  }
}
