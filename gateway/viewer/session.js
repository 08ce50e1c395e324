// One live session over the gateway's WebSocket (docs/session-protocol.md):
// Challenge -> Hello -> SignedIn, Join -> Joined + StateSnapshot + ViewerFrames, then
// transforms, acks, signed ops and chat. Events (CustomEvent detail):
//   challenge {chainId, domain}   signedin {visitor, address}   joined {instance, spawn}
//   denied {reason}   peers {}   state {objectId, prop, value}   chat {line}
//   error {code, message}   closed {reason}   mesh {} (links, voice: see this.mesh)
// Transforms also go straight to mesh peers (mesh.js); once every peer gets them directly
// the node gets one a second (presence for late joiners and the relay fallback).
import * as F from "./frames.js";
import { Mesh } from "./mesh.js";
import { chatSigningBytes, parseAction, planInteraction, signOp } from "./ops.js";
import { Replica } from "./replica.js";
import { ed25519 } from "./vendor/vendor.js";
import { newSessionKey, signIn } from "./wallet.js";

const HEARTBEAT_MS = 5000;
// The node takes at most 10 transforms a second (a bucket with a burst of 3): stay below.
const MOVE_INTERVAL_MS = 110;
const IDLE_INTERVAL_MS = 1000;
const TICK_MS = 50;
const NODE_INTERVAL_MS = 1000;

export function sessionUrl(base = location.href) {
  const u = new URL("/session", base);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  return u.toString();
}

export class Session extends EventTarget {
  constructor(url = sessionUrl()) {
    super();
    this.url = url;
    this.key = newSessionKey();
    this.replica = null;
    this.challenge = null;
    this.joined = null;
    this.manifest = null;
    this._waiters = [];
    this._lastSent = 0;
    this._lastTransformSent = 0;
    this._transform = null;
    this._timer = null;
    this._lastNodeTransform = -Infinity;
    this.mesh = new Mesh({ send: (b) => this._send(b),
      peers: () => this.replica?.peers().map((p) => p.visitor) ?? [] });
    this.mesh.addEventListener("transform", (e) => {
      if (this.replica?.setDirect(e.detail.peer, e.detail.transform)) this._emit("peers");
    });
    this.mesh.addEventListener("change", () => {
      if (this.replica?.keepDirect(this.mesh.connected())) this._emit("peers");
      this._emit("mesh");
    });
  }

  _emit(type, detail = {}) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  // Open the socket; resolves with the node's Challenge.
  open(url = this.url) {
    this.url = url;
    return new Promise((resolve, reject) => {
      const ws = this.ws = new WebSocket(url);
      ws.binaryType = "arraybuffer";
      ws.onerror = () => reject(new Error(`cannot open the session at ${url}`));
      ws.onclose = (ev) => {
        clearInterval(this._timer);
        const reason = ev.reason || `connection closed (${ev.code})`;
        for (const w of this._waiters.splice(0)) w.reject(new Error(reason));
        if (ws === this.ws) this._emit("closed", { reason });
      };
      ws.onmessage = (ev) => this._receive(ev.data);
      this._expect([F.T.Challenge, F.T.Denied]).then((f) => {
        if (f.type === F.T.Denied) return reject(new Error(f.reason));
        this.challenge = f;
        this._emit("challenge", { chainId: f.chainId, domain: f.domain });
        resolve(f);
      }, reject);
    });
  }

  _expect(types) {
    return new Promise((resolve, reject) => this._waiters.push({ types, resolve, reject }));
  }

  _send(bytes) {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(bytes);
    this._lastSent = performance.now();
    return true;
  }

  async signIn(wallet) {
    const s = await signIn(wallet, this.key, this.challenge);
    this.wallet = wallet;
    this._send(F.hello(s.proof, s.proofSignature, this.key.publicKey, s.possession));
    const answer = await this._expect([F.T.SignedIn, F.T.Denied]);
    if (answer.type === F.T.Denied) throw new Error(answer.reason);
    if (answer.visitor !== this.key.visitor) throw new Error("the node named another session key");
    this.replica = new Replica(answer.visitor, answer.address);
    this._emit("signedin", { visitor: answer.visitor, address: answer.address });
    clearInterval(this._timer);
    this._timer = setInterval(() => this._tick(), TICK_MS);
    return answer;
  }

  // Join `worldId` (its manifest plans clicks); follows one RedirectTo. Resolves with Joined
  // or throws with the node's Denied reason.
  async join(worldId, manifest, redirected = false) {
    this.manifest = manifest;
    this._send(F.join(worldId));
    const answer = await this._expect([F.T.Joined, F.T.Denied, F.T.RedirectTo]);
    if (answer.type === F.T.Denied) {
      this._emit("denied", { reason: answer.reason });
      throw new Error(answer.reason);
    }
    if (answer.type === F.T.RedirectTo) {
      if (redirected || answer.addresses.length === 0) throw new Error(`denied: redirected to node ${answer.node}`);
      this.mesh.reset();
      const old = this.ws;
      this.ws = null;
      old.close();
      await this.open(sessionUrl(answer.addresses[0]));
      await this.signIn(this.wallet);
      return this.join(worldId, manifest, true);
    }
    this.joined = answer;
    this.replica.reset(answer.instance);
    this._transform = answer.spawn;
    this._emit("joined", { instance: answer.instance, spawn: answer.spawn, worldId });
    return answer;
  }

  _receive(data) {
    let f;
    try { f = F.decode(new Uint8Array(data)); }
    catch (e) { this._emit("error", { code: "frame_invalid", message: e.message }); return; }
    const i = this._waiters.findIndex((w) => w.types.includes(f.type));
    if (i >= 0) { this._waiters.splice(i, 1)[0].resolve(f); return; }
    const r = this.replica;
    switch (f.type) {
      case F.T.ViewerFrame: {
        if (r === null) return;
        const { reply, changed } = r.applyFrame(f);
        if (reply === "ack") this._send(F.ack(f.seq));
        else if (reply === "resync") this._send(F.resync());
        if (changed) this._emit("peers");
        return;
      }
      case F.T.StateSnapshot:
        for (const op of f.ops) this._op(op);
        for (const m of f.chat) this._chat(m);
        return;
      case F.T.StateOp: return this._op(f);
      case F.T.ChatMessage: return this._chat(f);
      case F.T.RtcConfig:
      case F.T.MeshPlan:
      case F.T.Signal: return this.mesh.receive(f);
      case F.T.Error: return this._emit("error", { code: f.code, message: f.message });
      case F.T.Denied: return this._emit("denied", { reason: f.reason });
      default: this._emit("error", { code: "frame_invalid", message: `unexpected frame ${f.type}` });
    }
  }

  _op(op) {
    if (this.replica?.receiveOp(op)) this._emit("state", { objectId: op.objectId, prop: op.prop, value: op.value });
  }

  _chat(m) {
    const line = this.replica?.receiveChat(m);
    if (line) this._emit("chat", { line });
  }

  // --- acting ------------------------------------------------------------------------------

  // Where our avatar stands; sent at most 10 Hz while it changes, about 1 Hz when idle.
  setTransform(position, rotation, anim = "walk") {
    this._transform = { position, rotation, anim };
    this._moved = true;
  }

  _tick() {
    const now = performance.now();
    if (this.joined && this._transform) {
      const due = this._moved ? MOVE_INTERVAL_MS : IDLE_INTERVAL_MS;
      if (now - this._lastTransformSent >= due && this.ws?.readyState === WebSocket.OPEN) {
        const t = this._transform;
        const bytes = F.transform(t.position, t.rotation, this._moved ? t.anim : "idle");
        this.mesh.sendTransform(bytes);
        this._lastTransformSent = now;
        this._moved = false;
        if (!this.mesh.allDirect() || now - this._lastNodeTransform >= NODE_INTERVAL_MS) {
          this._send(bytes);
          this._lastNodeTransform = now;
        }
        return;
      }
    }
    if (now - this._lastSent >= HEARTBEAT_MS) this._send(F.heartbeat());
  }

  // Click (or another trigger) on a manifest object: a signed op when its action is a
  // shared change; null for script names, which change nothing shared.
  interact(object, trigger = "onClick") {
    const r = this.replica;
    if (r === null || this.joined === null) throw new Error("join a world first");
    const action = parseAction(object.interactions?.[trigger]);
    if (action === null || action.kind === "move") return null;
    const hlc = r.clock.tick(Date.now());
    const plan = planInteraction(object, trigger, r.value(object, action.prop), r.author, hlc);
    const op = signOp(plan, this.key.secret);
    this._send(F.stateOp(op));
    this._op(op);
    return op;
  }

  say(text) {
    if (this.joined === null) throw new Error("join a world first");
    const m = { instance: this.joined.instance, author: this.key.visitor, text, sentMs: Date.now() };
    m.signature = ed25519.sign(chatSigningBytes(m), this.key.secret);
    this._send(F.chat(m));
    this._chat(m);
    return m;
  }

  // The world owner's signed silence of `target` (on) or its lifting; anyone else's is refused
  // by the node with an Error, and nothing changes.
  silence(target, on = true) {
    if (this.joined === null) throw new Error("join a world first");
    const s = { instance: this.joined.instance, target, on, sentMs: Date.now(), author: this.key.visitor };
    s.signature = ed25519.sign(F.silenceSigningBytes(s), this.key.secret);
    this._send(F.silence(s));
    return s;
  }

  report(subject, reason) {
    if (this.joined !== null) this._send(F.report(this.joined.worldId, subject, reason));
  }

  close() {
    clearInterval(this._timer);
    this.mesh.close();
    if (this.ws?.readyState === WebSocket.OPEN) this._send(F.leave());
    this.ws?.close();
  }
}
