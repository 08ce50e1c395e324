// Session protocol frames (docs/session-protocol.md): msgpack arrays [type, field, ...].
// Field order follows fluxnode.core.session.frames; the node decodes strictly, so every
// frame here carries exactly its fields with the right types.
import { msgpackDecode, msgpackEncode } from "./vendor/vendor.js";

export const T = {
  Hello: 1, Join: 2, Joined: 3, Denied: 4, RedirectTo: 5, Challenge: 6, SignedIn: 7,
  Error: 8, Report: 9, Transform: 10, ViewerFrame: 11, Ack: 12, Resync: 13, StateSnapshot: 14,
  StateOp: 20, ChatMessage: 30, Heartbeat: 40, Leave: 41,
  Signal: 70, MeshPlan: 72, MeshStatus: 73, RtcConfig: 74, Silence: 75,
};

// WebRTC (fluxnode.core.session.wire_rtc): limits the node checks, so the page keeps to them.
export const MAX_SDP = 16 << 10;
export const MAX_LINKS = 100;
export const SIGNAL_KINDS = ["offer", "answer", "ice", "bye", "failed"];
export const LINK_DATA = 1, LINK_AUDIO = 2, LINK_OFFER = 4;
export const NODE_PEER = "@node";

const enc = (fields) => msgpackEncode(fields);

export const hello = (proof, proofSig, sessionKey, possessionSig) =>
  enc([T.Hello, proof, proofSig, sessionKey, possessionSig]);
export const join = (worldId, avatar = null) => enc([T.Join, worldId, avatar, []]);
export const transform = (pos, rot, anim) =>
  enc([T.Transform, [pos.map(Number), rot.map(Number), anim]]);
export const ack = (seq) => enc([T.Ack, seq]);
export const resync = () => enc([T.Resync]);
export const heartbeat = () => enc([T.Heartbeat]);
export const leave = () => enc([T.Leave]);
export const report = (worldId, subject, reason) => enc([T.Report, worldId, subject, reason]);
export const stateOp = (op) => enc([T.StateOp, ...opFields(op)]);
export const meshStatus = (connected) => enc([T.MeshStatus, [...connected]]);
export const silence = (s) =>
  enc([T.Silence, s.instance, s.target, s.on, s.sentMs, s.author, s.signature]);

// Silence.signing_bytes(): compact JSON of ASCII ids, which JSON.stringify writes the same.
export const silenceSigningBytes = (s) => new TextEncoder().encode(
  JSON.stringify(["flux-silence/1", s.instance, s.target, s.on, s.sentMs, s.author]));

export function signal(peer, kind, payload = "") {
  if (!SIGNAL_KINDS.includes(kind)) throw new Error(`no signal kind ${kind}`);
  if (new TextEncoder().encode(payload).length > MAX_SDP) throw new Error(`signal payload over ${MAX_SDP} bytes`);
  return enc([T.Signal, peer, kind, payload]);
}
export const chat = (m) => enc([T.ChatMessage, m.instance, m.author, m.text, m.sentMs, m.signature]);

function opFields(op) {
  return [op.objectId, op.kind, op.prop, op.value, op.trigger, op.hlc.wallMs, op.hlc.counter,
    op.hlc.actor, op.author, op.signature];
}

function toOp(f) {
  if (!Array.isArray(f) || f.length !== 10) throw new Error("an op must have 10 fields");
  return {
    objectId: f[0], kind: f[1], prop: f[2], value: f[3], trigger: f[4],
    hlc: { wallMs: f[5], counter: f[6], actor: f[7] }, author: f[8], signature: f[9],
  };
}

function toChat(f) {
  if (!Array.isArray(f) || f.length !== 5) throw new Error("a chat line must have 5 fields");
  return { instance: f[0], author: f[1], text: f[2], sentMs: f[3], signature: f[4] };
}

const toTransform = (t) => (t == null ? null : { position: t[0], rotation: t[1], anim: t[2] });

const WORLD_HALF_EXTENT = 10_000;
const ANIM = /^[a-z0-9_-]{1,32}$/;
const finite = (a, n) => Array.isArray(a) && a.length === n && a.every((c) => typeof c === "number" && Number.isFinite(c));

// A peer's Transform off a data channel ([10, [position, rotation, anim]]), checked as strictly
// as the node would: a stranger's bytes. Throws on anything else.
export function decodeTransform(bytes) {
  if (bytes.length > 256) throw new Error("a transform is at most 256 bytes");
  const f = msgpackDecode(bytes);
  if (!Array.isArray(f) || f.length !== 2 || f[0] !== T.Transform) throw new Error("not a transform");
  const t = f[1];
  if (!Array.isArray(t) || t.length !== 3 || !finite(t[0], 3) || !finite(t[1], 4) ||
      typeof t[2] !== "string" || !ANIM.test(t[2])) throw new Error("a malformed transform");
  // fluxnode.core.session.presence.transform_problem with the default world box.
  if (t[0].some((c) => Math.abs(c) > WORLD_HALF_EXTENT)) throw new Error("a transform outside the world");
  if (Math.abs(Math.hypot(...t[1]) - 1) > 0.01) throw new Error("rotation must be a unit quaternion");
  return toTransform(t);
}

function toPlan(f) {
  const links = f[2] ?? {};
  if (typeof links !== "object" || Array.isArray(links)) throw new Error("mesh links must be a map");
  return { epoch: f[0], mode: f[1], links: new Map(Object.entries(links)), silenced: new Set(f[3] ?? []) };
}

const toIceServer = (s) => {
  const out = { urls: [...s[0]] };
  if (s[1] != null) out.username = s[1];
  if (s[2] != null) out.credential = s[2];
  return out;
};

function mapValues(obj, fn) {
  return Object.fromEntries(Object.entries(obj ?? {}).map(([k, v]) => [k, fn(v)]));
}

const DECODE = {
  [T.Challenge]: (f) => ({ node: f[0], domain: f[1], chainId: f[2], uri: f[3], nonce: f[4],
    challenge: f[5] }),
  [T.SignedIn]: (f) => ({ visitor: f[0], address: f[1], expiresMs: f[2] }),
  [T.Denied]: (f) => ({ reason: f[0] }),
  [T.Error]: (f) => ({ code: f[0], message: f[1] }),
  [T.Joined]: (f) => ({ worldId: f[0], instance: f[1], node: f[2], seat: f[3],
    spawn: toTransform(f[4]) }),
  [T.RedirectTo]: (f) => ({ node: f[0], addresses: f[1], instance: f[2] }),
  [T.ViewerFrame]: (f) => ({ seq: f[0], base: f[1], changed: mapValues(f[2], toTransform),
    removed: f[3], info: f[4] ?? {} }),
  [T.StateSnapshot]: (f) => ({ instance: f[0], ops: f[1].map(toOp), chat: f[2].map(toChat) }),
  [T.StateOp]: (f) => toOp(f),
  [T.ChatMessage]: (f) => toChat(f),
  [T.Signal]: (f) => ({ peer: f[0], kind: f[1], payload: f[2] }),
  [T.MeshPlan]: toPlan,
  [T.RtcConfig]: (f) => ({ iceServers: f[0].map(toIceServer) }),
  [T.Silence]: (f) => ({ instance: f[0], target: f[1], on: f[2], sentMs: f[3], author: f[4],
    signature: f[5] }),
};

// {type, ...fields}; throws on anything that is not a frame a node sends a client.
export function decode(bytes) {
  const obj = msgpackDecode(bytes);
  if (!Array.isArray(obj) || typeof obj[0] !== "number") throw new Error("not a frame");
  const build = DECODE[obj[0]];
  if (build === undefined) throw new Error(`unexpected frame type ${obj[0]}`);
  return { type: obj[0], ...build(obj.slice(1)) };
}
