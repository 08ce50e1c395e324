// One link of the page's WebRTC mesh (mesh.js): the browser's RTCPeerConnection to one peer,
// its non-trickle offer/answer (the SDP goes once ICE gathering is complete, so it carries
// every candidate), the `flux-transforms` data channel and the audio transceiver.
//
// Split from mesh.js where the page's bookkeeping ends: a Link knows only its own connection
// and tells its Mesh what happened (_signal, _changed, _failed, _ended, _message), while the
// Mesh decides from the plan which links exist and what audio flows (_gateAudio).
import * as F from "./frames.js";

export const CHANNEL_LABEL = "flux-transforms";
const GATHER_TIMEOUT_MS = 5_000;

// The kinds of an SDP's media sections, in order ("audio,application").
export function sections(sdp) {
  return sdp.split(/\r?\n/).filter((l) => l.startsWith("m=")).map((l) => l.slice(2).split(" ")[0]).join(",");
}

export class Link {
  constructor(mesh, peer, flags, offerer) {
    this.mesh = mesh;
    this.peer = peer;
    this.offerer = offerer;
    this.data = Boolean(flags & F.LINK_DATA);
    this.audio = Boolean(flags & F.LINK_AUDIO);
    this.pc = new RTCPeerConnection({ iceServers: mesh.iceServers });
    this.channel = null;
    this.transceiver = null;
    this.element = null;
    this.state = "connecting";
    this.createdAt = performance.now();
    this.openMs = null; // creation to data channel open
    this.stats = { packetsReceived: 0, packetsSent: 0, speaking: false };
    this._steps = Promise.resolve();
    this._deadline = setTimeout(() => this.fail("ICE did not connect in time"), mesh.connectTimeoutMs);
    this.pc.onconnectionstatechange = () => {
      const s = this.pc.connectionState;
      if (s === "failed") this.fail("ICE failed");
      else if (s === "connected" && !this.data) this._up();
      else if (s === "closed" && this.state === "connected") this.mesh._ended(this);
    };
    this.pc.ondatachannel = (ev) => { if (ev.channel.label === CHANNEL_LABEL) this._useChannel(ev.channel); };
    this.pc.ontrack = (ev) => { if (ev.track.kind === "audio") this._play(ev.track); };
  }

  get channelOpen() { return this.channel?.readyState === "open"; }

  // Signalling steps run one at a time, in the order they came.
  post(step) {
    this._steps = this._steps.then(() => (this.state === "closed" ? null : step()))
      .catch((e) => this.fail(`negotiation failed: ${e.message ?? e}`));
  }

  async offer() {
    if (this.data) this._useChannel(this.pc.createDataChannel(CHANNEL_LABEL, { ordered: false, maxRetransmits: 0 }));
    if (this.audio) this.transceiver = this.pc.addTransceiver("audio", { direction: "sendrecv" });
    this.mesh._gateAudio(this);
    await this.pc.setLocalDescription(await this.pc.createOffer());
    await this._gathered();
    this.mesh._signal(this.peer, "offer", this.pc.localDescription.sdp);
  }

  async answer(sdp) {
    await this.pc.setRemoteDescription({ type: "offer", sdp });
    // Take the offer's audio whatever our plan says now (the peer's node may be ahead of
    // ours): what flows is gated by the current plan (_gateAudio) anyway.
    for (const t of this.pc.getTransceivers()) {
      if (t.receiver.track?.kind !== "audio") continue;
      t.direction = "sendrecv";
      this.transceiver = t;
      this.audio = true;
    }
    this.mesh._gateAudio(this);
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    await this._gathered();
    this.mesh._signal(this.peer, "answer", this.pc.localDescription.sdp);
  }

  // False (nothing changes) for an answer to another offer: signals carry no offer id, so the
  // answer to the link this one replaced (re-offered because the plan asked for more, before
  // that answer came) reaches this one. Its media sections are not ours (a re-offer always
  // adds one), and applying it would fail the link; ours is still on its way.
  async accept(sdp) {
    const local = this.pc.localDescription;
    if (local && sections(sdp) !== sections(local.sdp)) return false;
    if (this.pc.signalingState !== "have-local-offer") throw new Error(`an answer in state ${this.pc.signalingState}`);
    await this.pc.setRemoteDescription({ type: "answer", sdp });
    return true;
  }

  async candidate(line) {
    // Before the offer/answer there is nothing to add it to (as in the Python client).
    if (line && this.pc.remoteDescription) await this.pc.addIceCandidate({ candidate: line, sdpMLineIndex: 0 });
  }

  _gathered() {
    if (this.pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { clearTimeout(timer); this.pc.removeEventListener("icegatheringstatechange", check); resolve(); };
      const check = () => { if (this.pc.iceGatheringState === "complete") done(); };
      // Whatever was gathered by then goes: a peer-reflexive pair can still form.
      const timer = setTimeout(done, GATHER_TIMEOUT_MS);
      this.pc.addEventListener("icegatheringstatechange", check);
    });
  }

  _useChannel(ch) {
    this.channel = ch;
    ch.binaryType = "arraybuffer";
    ch.onopen = () => { this.openMs = performance.now() - this.createdAt; this._up(); };
    ch.onclose = () => { if (this.state === "connected") this.mesh._ended(this); };
    ch.onmessage = (ev) => this.mesh._message(this, ev.data);
  }

  _up() {
    if (this.state !== "connecting") return;
    clearTimeout(this._deadline);
    this.state = "connected";
    this.mesh._changed(this);
  }

  _play(track) {
    const a = this.element ?? (this.element = document.createElement("audio"));
    a.dataset.peer = this.peer;
    a.autoplay = true;
    a.srcObject = new MediaStream([track]);
    this.mesh._audioBox().append(a);
    this.mesh._gateAudio(this);
  }

  send(bytes) {
    if (this.state === "closed" || !this.channelOpen) return false;
    try { this.channel.send(bytes); } catch { return false; }
    return true;
  }

  fail(why) {
    if (this.state === "closed" || this.state === "failed") return;
    this.problem = why;
    this.mesh._failed(this);
  }

  close() {
    clearTimeout(this._deadline);
    this.state = "closed";
    this.element?.remove();
    try { this.pc.close(); } catch { /* closing twice is fine */ }
  }
}
