// Signed world-state operations and chat lines, byte for byte as fluxnode.core.session.state
// and .chat define them: every replica re-checks the session key's signature over
// `signing_bytes`, so the text here must equal Python's json.dumps output exactly.
import { ed25519 } from "./vendor/vendor.js";

const utf8 = new TextEncoder();
const MAX_COUNTER = 2 ** 32 - 1;

// Python's repr(float): shortest round-trip digits, fixed notation for exponents -4..15,
// otherwise d.ddde+XX. JS picks other cut-offs (1e-5 vs 1e-05, 1e16 vs 10000000000000000).
export function pyFloat(x) {
  if (!Number.isFinite(x)) throw new RangeError("op values must be finite numbers");
  if (Object.is(x, -0)) return "-0.0";
  const [mant, expText] = x.toExponential().split("e");
  const exp = Number(expText);
  const neg = mant.startsWith("-");
  const digits = mant.replace("-", "").replace(".", "");
  let out;
  if (exp >= -4 && exp < 16) {
    if (exp < 0) out = "0." + "0".repeat(-exp - 1) + digits;
    else if (digits.length <= exp + 1) out = digits + "0".repeat(exp + 1 - digits.length) + ".0";
    else out = digits.slice(0, exp + 1) + "." + digits.slice(exp + 1);
  } else {
    const m = digits.length > 1 ? digits[0] + "." + digits.slice(1) : digits;
    const e = Math.abs(exp).toString().padStart(2, "0");
    out = `${m}e${exp < 0 ? "-" : "+"}${e}`;
  }
  return (neg ? "-" : "") + out;
}

// msgpack sends a safe-integer Number (-0 included, as 0) as an int and anything else as a
// float64, so Python sees int or float accordingly; print each as Python's json module does.
function number(x) {
  return Number.isSafeInteger(x) ? String(x) : pyFloat(x);
}

function byCodePoint(a, b) {
  // Python sorts str keys by code point; JS's default sort compares UTF-16 units.
  const ca = Array.from(a), cb = Array.from(b);
  for (let i = 0; i < Math.min(ca.length, cb.length); i++) {
    const d = ca[i].codePointAt(0) - cb[i].codePointAt(0);
    if (d !== 0) return d;
  }
  return ca.length - cb.length;
}

// json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False)
export function canonical(v) {
  if (v === null) return "null";
  if (v === true) return "true";
  if (v === false) return "false";
  if (typeof v === "number") return number(v);
  if (typeof v === "string") return JSON.stringify(v);
  if (Array.isArray(v)) return "[" + v.map(canonical).join(",") + "]";
  if (typeof v === "object") {
    const keys = Object.keys(v).sort(byCodePoint);
    return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonical(v[k])).join(",") + "}";
  }
  throw new TypeError(`op values must be plain JSON, not ${typeof v}`);
}

export function opSigningBytes(op) {
  const body = ["flux-state-op/1", op.objectId, op.kind, op.prop, op.value, op.trigger,
    op.hlc.wallMs, op.hlc.counter, op.hlc.actor, op.author];
  return utf8.encode(canonical(body));
}

// Chat lines are json.dumps(body, separators=(",", ":"), ensure_ascii=False): no sort needed.
export function chatSigningBytes(m) {
  const body = ["flux-chat/1", m.instance, m.author, m.text, m.sentMs];
  return utf8.encode("[" + body.map(canonical).join(",") + "]");
}

// A hybrid logical clock (fluxnode.core.session.hlc.HlcClock): later than all it has seen.
export class HlcClock {
  constructor(actor) { this.actor = actor; this.wall = 0; this.counter = 0; }
  tick(nowMs) {
    let wall = Math.max(Math.floor(nowMs), this.wall);
    let counter = wall === this.wall ? this.counter + 1 : 0;
    if (counter > MAX_COUNTER) { wall += 1; counter = 0; }
    this.wall = wall; this.counter = counter;
    return { wallMs: wall, counter, actor: this.actor };
  }
  observe(h) {
    if (h.wallMs > this.wall || (h.wallMs === this.wall && h.counter > this.counter)) {
      this.wall = h.wallMs; this.counter = h.counter;
    }
  }
}

const PROP = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

// The declarative actions of docs/world-format.md; anything else is a script name (null here).
export function parseAction(text) {
  if (typeof text !== "string") return null;
  if (text === "move") return { kind: "move" };
  if (text.startsWith("toggle:")) {
    const prop = text.slice(7);
    return PROP.test(prop) ? { kind: "toggle", prop } : null;
  }
  if (text.startsWith("set:")) {
    const eq = text.indexOf("=");
    const prop = text.slice(4, eq);
    if (eq < 0 || !PROP.test(prop)) return null;
    try { return { kind: "set", prop, value: JSON.parse(text.slice(eq + 1)) }; }
    catch { return null; }
  }
  return null;
}

// The op a click (or other trigger) produces, unsigned; null when it is no shared change.
export function planInteraction(object, trigger, current, author, hlc) {
  const action = parseAction(object.interactions?.[trigger]);
  if (action === null || action.kind === "move") return null;
  const value = action.kind === "toggle" ? current !== true : action.value;
  return { objectId: object.id, kind: "set", prop: action.prop, value, trigger, hlc, author };
}

export function signOp(op, secretKey) {
  return { ...op, signature: ed25519.sign(opSigningBytes(op), secretKey) };
}

export function verifyOp(op, publicKey) {
  try { return ed25519.verify(op.signature, opSigningBytes(op), publicKey); }
  catch { return false; }
}
