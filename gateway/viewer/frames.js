// Session protocol frames (docs/session-protocol.md): msgpack arrays [type, field, ...].
// Field order follows fluxnode.core.session.frames; the node decodes strictly, so every
// frame here carries exactly its fields with the right types.
import { msgpackDecode, msgpackEncode } from "./vendor/vendor.js";

export const T = {
  Hello: 1, Join: 2, Joined: 3, Denied: 4, RedirectTo: 5, Challenge: 6, SignedIn: 7,
  Error: 8, Report: 9, Transform: 10, ViewerFrame: 11, Ack: 12, Resync: 13, StateSnapshot: 14,
  StateOp: 20, ChatMessage: 30, Heartbeat: 40, Leave: 41,
};

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
};

// {type, ...fields}; throws on anything that is not a frame a node sends a client.
export function decode(bytes) {
  const obj = msgpackDecode(bytes);
  if (!Array.isArray(obj) || typeof obj[0] !== "number") throw new Error("not a frame");
  const build = DECODE[obj[0]];
  if (build === undefined) throw new Error(`unexpected frame type ${obj[0]}`);
  return { type: obj[0], ...build(obj.slice(1)) };
}
