// The page's WebRTC mesh (docs/session-protocol.md, "WebRTC"): the direct links its node's
// MeshPlan names, with the browser's own RTCPeerConnection.
//
// - RtcConfig: the ICE servers, used as given (none: host candidates only). No link opens
//   before it came, so the browser never picks servers of its own.
// - MeshPlan: links named and not held are opened (we offer when the plan says LINK_OFFER,
//   else we answer the peer's offer; an offer for a link the plan does not name yet is kept a
//   few seconds, as the peer's node may have sent its plan first); links no longer named are
//   closed with Signal "bye". Signalling is non-trickle: the SDP goes once ICE gathering is
//   complete, so it carries every candidate.
// - A link not connected within CONNECT_TIMEOUT_MS, or whose ICE failed, is closed and
//   reported (Signal "failed"): the node relays that pair, and it is not tried again until a
//   plan leaves it out or FAIL_FOR_MS passed (the rule's spell: if the report did not take
//   effect, a plan still naming the peer is tried again then, a fresh offer of the peer's
//   answered). MeshStatus tells the node which data channels are open, on change.
// - An offerer whose link lacks what the plan now asks for (relay-mode audio, now transforms
//   too) offers a new one in its place; an answer to the old offer that comes after is ignored.
// - Transforms ride `flux-transforms` (unordered, no retransmits): a lost one is replaced by
//   the next. Only a well-formed Transform is taken from a peer.
// - Voice: a LINK_AUDIO link always negotiates a send-and-receive audio transceiver, but the
//   microphone (getUserMedia) is asked for only when the visitor turns voice on (a click, which
//   also lets the page play what arrives under autoplay rules). Muting detaches the track, so
//   nothing is sent at all; without LINK_AUDIO (a silenced end) nothing is sent or played.
// Events: "change" (links, voice, speaking marks), "transform" {peer, transform}.
//
// One link's RTCPeerConnection (its offer/answer, channel and transceiver) is mesh_link.js;
// this module keeps what spans the links: the plan, pending offers, failure marks, voice gating
// and MeshStatus, so a Link never decides which links exist.
import * as F from "./frames.js";
import { Link } from "./mesh_link.js";

// Pages and tests load the mesh from this module alone, the link's names included.
export { CHANNEL_LABEL, sections } from "./mesh_link.js";

export const CONNECT_TIMEOUT_MS = 10_000;
export const FAIL_FOR_MS = 60_000; // as FAIL_FOR in fluxnode.core.session.mesh
const PENDING_OFFER_MS = 10_000;
const MAX_PENDING_OFFERS = 16;
const STATS_MS = 1_000;
// A peer is marked speaking while its audio packets keep arriving (headless Chromium reports
// audioLevel 0, and Opus without DTX sends steadily while a track is attached).
const SPEAKING_MIN_PACKETS = 5;
const SPEAKING_HOLD_MS = 1_500;

export class Mesh extends EventTarget {
  // `send(bytes)` puts a frame on the session's WebSocket; `peers()` lists the visitors the
  // page knows of (its replica), for "are all my transforms direct". `now()` (ms) times the
  // failure marks (tests give their own clock and call retryFailed).
  constructor({ send, peers = () => [], connectTimeoutMs = CONNECT_TIMEOUT_MS, failForMs = FAIL_FOR_MS,
    now = () => performance.now() }) {
    super();
    this.connectTimeoutMs = connectTimeoutMs;
    this.failForMs = failForMs;
    this._now = now;
    this._retryTimer = null;
    this._send = send;
    this._peers = peers;
    this.iceServers = null;
    this.plan = null;
    this.links = new Map();
    this.failed = new Map(); // peer -> until when (now()) its link is not tried again
    this.pending = new Map(); // peer -> {sdp, at}: offers before the plan named them
    this.voiceOn = false;
    this.muted = false;
    this.mic = null;
    this.stats = { directSent: 0, directReceived: 0, directBad: 0, statusSent: 0, linksOpened: 0, linksFailed: 0,
      staleAnswers: 0 };
    this._reported = null;
    this._statsTimer = setInterval(() => this.pollStats(), STATS_MS);
  }

  get enabled() { return this.iceServers !== null; }

  // --- what the node says ----------------------------------------------------------------

  receive(f) {
    if (f.type === F.T.RtcConfig) {
      this.iceServers = f.iceServers;
      if (this.plan) this._applyPlan();
      this._emit("change");
    } else if (f.type === F.T.MeshPlan) {
      // Plans are taken in the order they come (one WebSocket keeps it); a node we were
      // redirected to numbers its epochs afresh.
      this.plan = f;
      if (this.iceServers) this._applyPlan();
      this._emit("change");
    } else if (f.type === F.T.Signal && f.peer !== F.NODE_PEER) {
      this._peerSignal(f);
    }
  }

  flags(peer) { return this.plan?.links.get(peer) ?? 0; }

  audioAllowed(peer) {
    return Boolean(this.flags(peer) & F.LINK_AUDIO) && !this.plan.silenced.has(peer);
  }

  _applyPlan() {
    const plan = this.plan;
    for (const p of [...this.failed.keys()]) if (!plan.links.has(p)) this.failed.delete(p);
    for (const p of [...this.links.keys()]) if (!plan.links.has(p)) this._drop(p, "bye");
    const now = performance.now();
    for (const [peer, flags] of plan.links) {
      let link = this.links.get(peer);
      if (link && this._renegotiate(link, flags)) { this._drop(peer, null); link = undefined; }
      if (link) { this._gateAudio(link); continue; }
      if (this._failing(peer) || peer === F.NODE_PEER || !(flags & (F.LINK_DATA | F.LINK_AUDIO))) continue;
      if (flags & F.LINK_OFFER) {
        const l = this._start(peer, flags, true);
        l.post(() => l.offer());
      } else {
        const offer = this.pending.get(peer);
        this.pending.delete(peer);
        if (offer && now - offer.at < PENDING_OFFER_MS) this._answer(peer, flags, offer.sdp);
      }
    }
    this._report();
  }

  // The offerer re-offers a link negotiated without what the plan now asks for.
  _renegotiate(link, flags) {
    if (!link.offerer || !(flags & F.LINK_OFFER)) return false;
    return (Boolean(flags & F.LINK_DATA) && !link.data) || (Boolean(flags & F.LINK_AUDIO) && !link.audio);
  }

  _start(peer, flags, offerer) {
    const link = new Link(this, peer, flags, offerer);
    this.links.set(peer, link);
    this.stats.linksOpened++;
    this._emit("change");
    return link;
  }

  _answer(peer, flags, sdp) {
    const link = this._start(peer, flags, false);
    link.post(() => link.answer(sdp));
  }

  _peerSignal({ peer, kind, payload }) {
    const link = this.links.get(peer);
    const flags = this.flags(peer);
    if (kind === "offer") {
      if (flags & F.LINK_OFFER) return; // we offer here
      // Not planned (yet), or failed here: kept a while (our mark may end first), not answered now.
      if (!this.iceServers || !flags || this._failing(peer)) {
        if (this.pending.size >= MAX_PENDING_OFFERS) this.pending.delete(this.pending.keys().next().value);
        this.pending.set(peer, { sdp: payload, at: performance.now() });
        return;
      }
      if (link) this._drop(peer, null); // the peer started over
      this._answer(peer, flags, payload);
    } else if (kind === "answer" && link?.offerer) {
      link.post(async () => { if (!(await link.accept(payload))) this.stats.staleAnswers++; });
    } else if (kind === "ice" && link) {
      link.post(() => link.candidate(payload));
    } else if (kind === "bye" || kind === "failed") {
      this.pending.delete(peer);
      if (kind === "failed") this._markFailed(peer);
      if (link) { this._drop(peer, null); this._report(); }
    }
  }

  _signal(peer, kind, payload = "") { this._send(F.signal(peer, kind, payload)); }

  _drop(peer, say) {
    const link = this.links.get(peer);
    if (!link) return;
    this.links.delete(peer);
    if (say) this._signal(peer, say);
    link.close();
    this._emit("change");
  }

  _report() {
    if (!this.plan) return;
    const connected = [...this.connected()].sort();
    const key = connected.join(",");
    if (key === this._reported) return;
    this._reported = key;
    this.stats.statusSent++;
    this._send(F.meshStatus(connected));
  }

  // Peers with LINK_DATA in the plan whose data channel is open.
  connected() {
    const out = new Set();
    for (const [p, l] of this.links) if (l.channelOpen && this.flags(p) & F.LINK_DATA) out.add(p);
    return out;
  }

  // --- the links' events -------------------------------------------------------------------

  _changed(link) {
    if (this.links.get(link.peer) !== link) return;
    this._report();
    this._emit("change");
  }

  _failed(link) {
    if (this.links.get(link.peer) !== link) { link.close(); return; }
    this.stats.linksFailed++;
    this._markFailed(link.peer);
    this.links.delete(link.peer);
    link.state = "failed";
    link.close();
    this._signal(link.peer, "failed");
    this._report();
    this._emit("change");
  }

  _failing(peer) { return (this.failed.get(peer) ?? -Infinity) > this._now(); }

  _markFailed(peer) { this.failed.set(peer, this._now() + this.failForMs); this._armRetry(); }

  _armRetry() {
    if (this._retryTimer !== null || this.failed.size === 0) return;
    const delay = Math.max(0, Math.min(...this.failed.values()) - this._now());
    this._retryTimer = setTimeout(() => { this._retryTimer = null; this.retryFailed(); }, delay);
  }

  // Forget the failure marks that ended: a plan still naming their peers is tried again (the
  // node never took our report, or the peer's). Runs when the first mark ends.
  retryFailed() {
    const now = this._now();
    const ended = [...this.failed].filter(([, until]) => until <= now);
    for (const [p] of ended) this.failed.delete(p);
    this._armRetry();
    if (ended.length && this.plan && this.iceServers) this._applyPlan();
    if (ended.length) this._emit("change");
  }

  // The peer went away while the plan still names the link: its next plan or offer decides.
  _ended(link) {
    if (this.links.get(link.peer) !== link) return;
    this.links.delete(link.peer);
    link.close();
    this._report();
    this._emit("change");
  }

  _message(link, data) {
    let t;
    try { t = F.decodeTransform(new Uint8Array(data)); } catch { this.stats.directBad++; return; }
    if (!(this.flags(link.peer) & F.LINK_DATA)) { this.stats.directBad++; return; }
    this.stats.directReceived++;
    this._emit("transform", { peer: link.peer, transform: t });
  }

  // --- transforms ----------------------------------------------------------------------------

  // Our transform (encoded) to every peer whose data channel is open; returns how many got it.
  sendTransform(bytes) {
    let n = 0;
    for (const p of this.connected()) if (this.links.get(p).send(bytes)) n++;
    this.stats.directSent += n;
    return n;
  }

  // Every peer we know of gets our transforms directly (the node then gets one a second).
  allDirect() {
    const everyone = new Set(this._peers());
    for (const [p, f] of this.plan?.links ?? []) if (f & F.LINK_DATA) everyone.add(p);
    const direct = this.connected();
    return everyone.size > 0 && [...everyone].every((p) => direct.has(p));
  }

  // --- voice ---------------------------------------------------------------------------------

  // Turn voice on (asks for the microphone; call it from a click) or off.
  async setVoice(on) {
    if (on && !this.mic) {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      this.mic = stream.getAudioTracks()[0];
    }
    if (!on && this.mic) { this.mic.stop(); this.mic = null; }
    this.voiceOn = on;
    await Promise.all([...this.links.values()].map((l) => this._gateAudio(l)));
    this._emit("change");
  }

  // Resolves once every sender has its track attached or detached.
  async setMuted(muted) {
    this.muted = muted;
    await Promise.all([...this.links.values()].map((l) => this._gateAudio(l)));
    this._emit("change");
  }

  _gateAudio(link) {
    const allowed = this.audioAllowed(link.peer);
    const track = this.voiceOn && !this.muted && allowed ? this.mic : null;
    if (link.element) {
      link.element.muted = !(this.voiceOn && allowed);
      if (this.voiceOn && allowed) link.element.play().catch(() => {});
    }
    const sender = link.transceiver?.sender;
    if (!sender || sender.track === track || link.state === "closed") return Promise.resolve();
    return sender.replaceTrack(track).catch(() => {}); // a link closing meanwhile: nothing to gate
  }

  _audioBox() {
    let box = document.getElementById("voice-audio");
    if (!box) {
      box = document.createElement("div");
      box.id = "voice-audio";
      box.hidden = true;
      document.body.append(box);
    }
    return box;
  }

  // RTP counters of every link's audio (inbound packetsReceived, outbound packetsSent) and
  // the speaking marks they imply.
  async pollStats() {
    let changed = false;
    for (const link of [...this.links.values()]) {
      if (!link.transceiver || link.state === "closed") continue;
      let received = 0, sent = 0;
      try {
        const report = await link.pc.getStats();
        report.forEach((r) => {
          if (r.kind !== "audio") return;
          if (r.type === "inbound-rtp") received += r.packetsReceived ?? 0;
          if (r.type === "outbound-rtp") sent += r.packetsSent ?? 0;
        });
      } catch { continue; }
      const now = performance.now();
      if (received > link.stats.packetsReceived) link.heardAt = now;
      const speaking = this.audioAllowed(link.peer) && received >= SPEAKING_MIN_PACKETS &&
        now - (link.heardAt ?? -Infinity) < SPEAKING_HOLD_MS;
      if (speaking !== link.stats.speaking) changed = true;
      link.stats = { packetsReceived: received, packetsSent: sent, speaking };
    }
    if (changed) this._emit("change");
  }

  // --- for the page and tests ----------------------------------------------------------------

  voiceOf(peer) {
    if (this.plan?.silenced.has(peer)) return "silenced";
    return this.links.get(peer)?.stats.speaking ? "speaking" : null;
  }

  snapshot() {
    const links = {};
    for (const [p, l] of this.links) {
      links[p] = { state: l.state, offerer: l.offerer, channel: l.channel?.readyState ?? null,
        audio: l.audio, openMs: l.openMs, ...l.stats };
    }
    return { enabled: this.enabled, epoch: this.plan?.epoch ?? null, mode: this.plan?.mode ?? null,
      silenced: [...(this.plan?.silenced ?? [])], links,
      failed: [...this.failed.keys()].filter((p) => this._failing(p)),
      connected: [...this.connected()].sort(), allDirect: this.allDirect(),
      voiceOn: this.voiceOn, muted: this.muted, stats: { ...this.stats } };
  }

  _emit(type, detail = {}) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  // We left the world: close every link (with "bye") and forget the plan.
  reset() {
    for (const p of [...this.links.keys()]) this._drop(p, "bye");
    this.plan = null;
    this.failed.clear();
    clearTimeout(this._retryTimer); this._retryTimer = null;
    this.pending.clear();
    this._reported = null;
    this._emit("change");
  }

  close() {
    clearInterval(this._statsTimer);
    clearTimeout(this._retryTimer);
    for (const l of this.links.values()) l.close();
    this.links.clear();
    if (this.mic) { this.mic.stop(); this.mic = null; }
  }
}
