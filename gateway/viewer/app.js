// The viewer page. One HTML file serves the directory (/, /viewer/) and a world's page:
// /w/<world id> (the share link), /viewer/index.html#<world id> or ?world=<world id>;
// ?cid=<root CID> pins a version (a share link that needs no world record at all).
import { showDirectory } from "./directory.js";
import { WorldView } from "./scene.js";
import { Session } from "./session.js";
import { $, appendChat, errorMessage, notice, renderWho, setState, shortAddress, showError } from "./ui.js";
import { FetchError, VerificationError, VerifiedFetcher, parseCid, verifyRecord } from "./verified.js";
import { DEV_CHAINS, DevWallet, InjectedWallet } from "./wallet.js";

export function worldFromLocation(loc = location) {
  const params = new URLSearchParams(loc.search);
  let id = null;
  if (loc.pathname.startsWith("/w/")) id = decodeURIComponent(loc.pathname.slice(3)).replace(/\/+$/, "");
  else if (loc.hash.length > 1) id = decodeURIComponent(loc.hash.slice(1));
  else if (params.get("world")) id = params.get("world");
  return { worldId: id || null, pinnedCid: params.get("cid") };
}

// The world's root CID: from its signed record when the node serves one (checked here), else
// from the link. A record whose CID differs from a pinned one loses: the link asked for that
// version.
async function rootCid(worldId, pinned) {
  let info = null, problem = null;
  try {
    const res = await fetch(`/api/worlds/${worldId}`, { headers: { Accept: "application/json" } });
    const body = await res.json().catch(() => null);
    if (res.ok) info = body;
    else problem = errorMessage(body, res.status);
  } catch (e) {
    problem = e.message;
  }
  const record = info?.record ?? (info?.signature ? info : null);
  // Who owns the world, only to offer the owner its controls (the nodes check it themselves).
  const owner = (/^(0x[0-9a-fA-F]{40})\//.exec(worldId)?.[1] ?? record?.owner ?? "").toLowerCase() || null;
  if (record) {
    const checked = await verifyRecord(worldId, record);
    if (!pinned) return { cid: checked.cid, owner, source: checked.ownerChecked ? "record signed by its owner" : "signed record" };
  }
  if (pinned) return { cid: parseCid(pinned), owner, source: "the link" };
  throw new FetchError(`cannot find world ${worldId}: ${problem ?? "the node sent no world record"}`, 404);
}

function validManifest(m) {
  if (typeof m !== "object" || m === null || typeof m.name !== "string" || typeof m.settings !== "object") {
    throw new VerificationError("world.json is not a world manifest");
  }
  if (m.objects !== undefined && !Array.isArray(m.objects)) throw new VerificationError("world.json objects is not a list");
  return m;
}

class WorldPage {
  constructor(worldId, pinnedCid) {
    this.worldId = worldId;
    this.pinnedCid = pinnedCid;
    this.fetcher = new VerifiedFetcher();
    this.session = null;
    this.view = null;
    this.manifest = null;
    this.owner = null;
    window.fluxViewer = this; // a handle for tests and the console
  }

  async start() {
    $("#directory").hidden = true;
    $("#world").hidden = false;
    $("#world-id").textContent = this.worldId;
    setState("loading", "Loading the world and checking every block…");
    try {
      const { cid, owner, source } = await rootCid(this.worldId, this.pinnedCid);
      this.root = cid;
      this.owner = owner;
      this.manifest = validManifest(JSON.parse(await this.fetcher.text(cid, "world.json")));
      $("#verified").textContent = `${cid} (from ${source}); ${this.fetcher.stats.blocks} block(s) verified`;
    } catch (e) {
      const kind = e instanceof VerificationError ? "verification" : "network";
      setState("error", kind === "verification" ? "The gateway sent content that fails verification." : "Could not load the world.");
      showError(kind, e instanceof VerificationError ? `Verification failed: ${e.message}` : e.message);
      return;
    }
    document.title = `${this.manifest.name} · Flux`;
    $("#world-name").textContent = this.manifest.name;
    $("#world-desc").textContent = this.manifest.description ?? "";
    this.view = new WorldView($("#scene"), { loadAsset: (path) => this.asset(path) });
    this.view.onAssetError = (path, e) => notice(`asset ${path} not shown: ${e.message}`);
    this.view.build(this.manifest);
    this.view.onPick = (id) => this.click(id);
    this.view.onMove = (pos, rot) => this.session?.setTransform(pos, rot, "walk");
    setState("ready", "World verified. Connecting…");
    await this.connect();
  }

  asset(path) {
    return this.fetcher.resolve(this.root, path).then((cid) => this.fetcher.file(cid));
  }

  async connect() {
    const s = this.session = new Session();
    s.addEventListener("peers", () => this.peers());
    s.addEventListener("mesh", () => this.meshChanged());
    s.addEventListener("state", (e) => this.view.applyState(e.detail.objectId, e.detail.prop, e.detail.value));
    s.addEventListener("chat", (e) => appendChat(e.detail.line, e.detail.line.visitor === s.key.visitor));
    s.addEventListener("error", (e) => notice(`node: ${e.detail.message}`));
    s.addEventListener("denied", (e) => this.denied(e.detail.reason));
    s.addEventListener("closed", (e) => {
      if (document.body.dataset.state !== "denied") setState("closed", `Disconnected: ${e.detail.reason}`);
    });
    let challenge;
    try {
      challenge = await s.open();
    } catch (e) {
      setState("error", "No session.");
      showError("network", e.message);
      return;
    }
    this.offerWallets(challenge);
  }

  offerWallets(challenge) {
    const injected = $("#signin-injected"), dev = $("#signin-dev");
    injected.hidden = !InjectedWallet.available();
    dev.hidden = !DEV_CHAINS.has(challenge.chainId);
    $("#signin").hidden = false;
    $("#signin-note").textContent = injected.hidden && dev.hidden
      ? "Install a browser wallet (EIP-1193, e.g. MetaMask) to enter."
      : `Chain ${challenge.chainId}${dev.hidden ? "" : " (test chain: a dev wallet made in this page works)"}`;
    injected.onclick = () => this.enter(new InjectedWallet(window.ethereum));
    dev.onclick = () => this.enter(new DevWallet());
    setState("signin", "Sign in to enter.");
  }

  async enter(wallet) {
    $("#signin").hidden = true;
    setState("signing", "Waiting for your wallet…");
    const s = this.session;
    try {
      await s.signIn(wallet);
    } catch (e) {
      return this.denied(e.message);
    }
    setState("joining", `Signed in as ${shortAddress(s.replica.address)}. Joining…`);
    let joined;
    try {
      joined = await s.join(this.worldId, this.manifest);
    } catch (e) {
      return this.denied(e.message);
    }
    const [x, y, z] = joined.spawn.position;
    this.view.camera.position.set(x, y + 1.6, z);
    for (const obj of this.manifest.objects ?? []) {
      for (const [prop] of Object.entries(obj.properties ?? {})) {
        this.view.applyState(obj.id, prop, s.replica.value(obj, prop));
      }
    }
    $("#chat-form").hidden = false;
    this.peers();
    setState("joined", `In ${this.manifest.name} (instance ${joined.instance.slice(0, 8)}, seat ${joined.seat}).`);
  }

  denied(reason) {
    setState("denied", "Entry refused.");
    showError("denied", reason);
  }

  peers() {
    const s = this.session;
    if (!s?.replica) return;
    const peers = s.replica.peers();
    const owner = this.owner !== null && s.replica.address.toLowerCase() === this.owner;
    const silence = owner && s.mesh.enabled
      ? (v) => s.silence(v, !s.mesh.plan?.silenced.has(v)) : null;
    renderWho({ visitor: s.replica.visitor, address: s.replica.address }, peers, (v) => s.mesh.voiceOf(v),
      silence, (v) => Boolean(s.mesh.plan?.silenced.has(v)));
    this.view.setPeers(peers, (p) => shortAddress(p.address ?? p.visitor));
  }

  get mesh() { return this.session?.mesh ?? null; }

  // Voice controls appear once the node offers WebRTC (RtcConfig); the microphone is asked
  // for only on the visitor's click.
  meshChanged() {
    const m = this.session.mesh;
    $("#voice").hidden = !m.enabled;
    const toggle = $("#voice-toggle"), mute = $("#voice-mute");
    toggle.textContent = m.voiceOn ? "Turn voice off" : "Turn voice on";
    toggle.setAttribute("aria-pressed", String(m.voiceOn));
    mute.hidden = !m.voiceOn;
    mute.textContent = m.muted ? "Unmute" : "Mute";
    mute.setAttribute("aria-pressed", String(m.muted));
    const me = this.session.replica?.visitor;
    $("#voice-note").textContent = me && m.plan?.silenced.has(me) ? "You are silenced in this instance."
      : m.plan?.mode === "relay" ? "Proximity voice (large instance)." : "";
    this.peers();
  }

  async toggleVoice() {
    const m = this.mesh;
    try {
      await m.setVoice(!m.voiceOn);
    } catch (e) {
      notice(`voice: ${e.message}`);
    }
  }

  click(objectId) {
    const obj = (this.manifest.objects ?? []).find((o) => o.id === objectId);
    if (!obj || !this.session?.joined) return null;
    const op = this.session.interact(obj, "onClick");
    if (op === null && obj.interactions?.onClick) notice(`${obj.interactions.onClick}: a script (not run by this viewer)`);
    return op;
  }

  say(text) {
    return this.session.say(text);
  }
}

function main() {
  const { worldId, pinnedCid } = worldFromLocation();
  window.addEventListener("hashchange", () => location.reload());
  $("#voice-toggle").addEventListener("click", () => window.fluxViewer?.toggleVoice());
  $("#voice-mute").addEventListener("click", () => {
    const m = window.fluxViewer?.mesh;
    if (m) m.setMuted(!m.muted);
  });
  $("#chat-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = $("#chat-input");
    const text = input.value.trim();
    if (text && window.fluxViewer?.session?.joined) {
      window.fluxViewer.say(text);
      input.value = "";
    }
  });
  if (worldId === null) showDirectory();
  else new WorldPage(worldId, pinnedCid).start();
}

main();
