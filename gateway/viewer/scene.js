// The three.js view of a world: the manifest's objects (primitives and glTF models), other
// visitors' avatars, our own camera (WASD/arrows to walk, drag to look) and object picking.
// Object types are the viewer's vocabulary (docs/world-format.md): plane, box/cube, door,
// sphere, cylinder, text, model (or any type with properties.model/src: a glTF asset).
import * as THREE from "./vendor/three.js";

const DEG = Math.PI / 180;
const WALK_SPEED = 3; // m/s, well under the node's 50 m/s teleport bound
const EYE = 1.6;

const vec = (v, d = 0) => new THREE.Vector3(v?.x ?? d, v?.y ?? d, v?.z ?? d);

function textSprite(text, size) {
  const canvas = document.createElement("canvas");
  const ctx = canvas.getContext("2d");
  const px = 48;
  ctx.font = `${px}px sans-serif`;
  canvas.width = Math.max(2, Math.ceil(ctx.measureText(text).width) + 16);
  canvas.height = px + 16;
  ctx.font = `${px}px sans-serif`;
  ctx.fillStyle = "rgba(0,0,0,0.55)";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = "#fff";
  ctx.textBaseline = "middle";
  ctx.fillText(text, 8, canvas.height / 2);
  const tex = new THREE.CanvasTexture(canvas);
  tex.colorSpace = THREE.SRGBColorSpace;
  const sprite = new THREE.Sprite(new THREE.SpriteMaterial({ map: tex, depthTest: true }));
  const h = Number(size) > 0 ? Number(size) : 0.3;
  sprite.scale.set((h * canvas.width) / canvas.height, h, 1);
  return sprite;
}

function material(props) {
  const color = typeof props?.color === "string" ? props.color : "#b0b0b0";
  let c;
  try { c = new THREE.Color(color); } catch { c = new THREE.Color("#b0b0b0"); }
  return new THREE.MeshStandardMaterial({ color: c, side: THREE.DoubleSide });
}

function primitive(obj) {
  const p = obj.properties ?? {};
  switch (obj.type) {
    case "plane": return new THREE.Mesh(new THREE.PlaneGeometry(1, 1), material(p));
    case "sphere": return new THREE.Mesh(new THREE.SphereGeometry(0.5, 24, 16), material(p));
    case "cylinder": return new THREE.Mesh(new THREE.CylinderGeometry(0.5, 0.5, 1, 24), material(p));
    case "text": return textSprite(String(p.text ?? ""), p.size);
    case "door": {
      // Hinged at its left edge, so opening swings it instead of spinning it in place.
      const leaf = new THREE.Mesh(new THREE.BoxGeometry(1, 1, 1), material(p));
      leaf.position.x = 0.5;
      const hinge = new THREE.Group();
      hinge.add(leaf);
      hinge.userData.leaf = leaf;
      return hinge;
    }
    default: return new THREE.Mesh(new THREE.BoxGeometry(1, 1, 1), material(p));
  }
}

function avatarMesh(label) {
  const g = new THREE.Group();
  const body = new THREE.Mesh(new THREE.CapsuleGeometry(0.3, 1.0, 4, 12),
    new THREE.MeshStandardMaterial({ color: 0x4a7bd0 }));
  body.position.y = 0.8;
  g.add(body);
  const tag = textSprite(label, 0.25);
  tag.position.y = 2.0;
  g.add(tag);
  return g;
}

export class WorldView {
  constructor(canvas, { loadAsset } = {}) {
    this.canvas = canvas;
    this.loadAsset = loadAsset; // (path) => Promise<Uint8Array>, verified
    this.renderer = new THREE.WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(Math.min(2, window.devicePixelRatio || 1));
    this.scene = new THREE.Scene();
    this.scene.background = new THREE.Color(0x9cc8ef);
    this.camera = new THREE.PerspectiveCamera(70, 1, 0.05, 2000);
    this.objects = new Map(); // id -> {obj, node}
    this.avatars = new Map(); // visitor -> {group, target}
    this.keys = new Set();
    this.yaw = 0; this.pitch = 0;
    this.raycaster = new THREE.Raycaster();
    this.onPick = null;
    this.onMove = null;
    this._last = performance.now();
    this._bindInput();
    this._resize();
    new ResizeObserver(() => this._resize()).observe(canvas);
    this.renderer.setAnimationLoop(() => this._frame());
  }

  _resize() {
    const w = this.canvas.clientWidth || 640, h = this.canvas.clientHeight || 480;
    this.renderer.setSize(w, h, false);
    this.camera.aspect = w / h;
    this.camera.updateProjectionMatrix();
  }

  build(manifest) {
    const s = manifest.settings ?? {};
    const light = s.lighting ?? {};
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x445544, Number(light.ambient ?? 0.6)));
    const sun = new THREE.DirectionalLight(0xffffff, Number(light.sun?.intensity ?? 1));
    const dir = Array.isArray(light.sun?.direction) ? light.sun.direction : [-1, -2, -1];
    sun.position.set(-dir[0], -dir[1], -dir[2]).normalize().multiplyScalar(50);
    this.scene.add(sun);
    for (const obj of manifest.objects ?? []) this._add(obj);
    const spawn = vec(s.spawnPoint);
    this.camera.position.set(spawn.x, spawn.y + EYE, spawn.z);
  }

  _add(obj) {
    const modelPath = obj.properties?.model ?? obj.properties?.src;
    const node = primitive(obj);
    node.position.copy(vec(obj.position));
    const r = vec(obj.rotation);
    node.rotation.set(r.x * DEG, r.y * DEG, r.z * DEG);
    node.scale.multiply(vec(obj.scale, 1)); // a text sprite's own scale is its aspect
    if (obj.type === "door") node.translateX(-0.5 * node.scale.x); // the hinge edge
    node.traverse((n) => { n.userData.objectId = obj.id; });
    node.name = obj.id;
    this.scene.add(node);
    this.objects.set(obj.id, { obj, node, baseRotation: node.rotation.clone() });
    if (typeof modelPath === "string" && this.loadAsset) this._loadModel(obj, node, modelPath);
  }

  async _loadModel(obj, node, path) {
    const { GLTFLoader } = THREE;
    try {
      const data = path.toLowerCase().endsWith(".gltf") ? await this._gltfJson(path) : await this.loadAsset(path);
      const input = typeof data === "string" ? data : data.buffer.slice(data.byteOffset, data.byteOffset + data.length);
      const gltf = await new GLTFLoader().parseAsync(input, "");
      for (const c of [...node.children]) node.remove(c);
      if (node.isMesh) node.material.visible = false;
      gltf.scene.traverse((n) => { n.userData.objectId = obj.id; });
      node.add(gltf.scene);
      node.userData.model = path;
    } catch (e) {
      this.onAssetError?.(path, e);
    }
  }

  // A .gltf names its buffers and images by relative path: fetch each through the verified
  // loader and hand GLTFLoader blob: URLs, so nothing it loads bypasses verification.
  async _gltfJson(path) {
    const doc = JSON.parse(new TextDecoder().decode(await this.loadAsset(path)));
    const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/") + 1) : "";
    for (const list of [doc.buffers ?? [], doc.images ?? []]) {
      for (const item of list) {
        if (typeof item.uri !== "string" || item.uri.startsWith("data:")) continue;
        if (/^[a-z][a-z0-9+.-]*:/i.test(item.uri)) throw new Error(`${path} names an outside URL`);
        const bytes = await this.loadAsset(dir + decodeURIComponent(item.uri));
        item.uri = URL.createObjectURL(new Blob([bytes]));
      }
    }
    return JSON.stringify(doc);
  }

  // Show a register's value: doors swing on `open`, colours repaint, moves reposition.
  applyState(objectId, prop, value) {
    const entry = this.objects.get(objectId);
    if (entry === undefined) return;
    const { node, baseRotation } = entry;
    if (prop === "open" && entry.obj.type === "door") {
      node.rotation.y = baseRotation.y + (value === true ? -90 * DEG : 0);
    } else if (prop === "color" && typeof value === "string") {
      node.traverse((n) => { if (n.isMesh) n.material.color = new THREE.Color(value); });
    } else if (prop === "position" && Array.isArray(value) && value.length === 3) {
      node.position.set(value[0], value[1], value[2]);
    } else if (prop === "deleted" && value === true) {
      node.visible = false;
    }
  }

  setPeers(peers, label) {
    const seen = new Set();
    for (const p of peers) {
      seen.add(p.visitor);
      let a = this.avatars.get(p.visitor);
      if (a === undefined) {
        a = { group: avatarMesh(label(p)), target: null };
        this.avatars.set(p.visitor, a);
        this.scene.add(a.group);
      }
      a.group.visible = p.transform !== null;
      if (p.transform) {
        const [x, y, z] = p.transform.position;
        a.target = new THREE.Vector3(x, y, z);
        const [qx, qy, qz, qw] = p.transform.rotation;
        a.group.quaternion.set(qx, qy, qz, qw);
        if (a.group.position.lengthSq() === 0) a.group.position.copy(a.target);
      }
    }
    for (const [v, a] of this.avatars) {
      if (!seen.has(v)) { this.scene.remove(a.group); this.avatars.delete(v); }
    }
  }

  // Where an avatar is drawn now (for tests and the who-is-here list).
  avatarPosition(visitor) {
    const a = this.avatars.get(visitor);
    return a ? a.group.position.toArray() : null;
  }

  // The id of the manifest object under canvas pixel (x, y), or null.
  pick(x, y) {
    const rect = this.canvas.getBoundingClientRect();
    const ndc = new THREE.Vector2(((x - rect.left) / rect.width) * 2 - 1, -((y - rect.top) / rect.height) * 2 + 1);
    this.raycaster.setFromCamera(ndc, this.camera);
    const roots = [...this.objects.values()].map((e) => e.node);
    for (const hit of this.raycaster.intersectObjects(roots, true)) {
      const id = hit.object.userData.objectId;
      if (id && this.objects.get(id)?.obj.interactions) return id;
    }
    return null;
  }

  // Canvas pixel of an object's centre (lets tests and keyboard users click it).
  screenPoint(objectId) {
    const e = this.objects.get(objectId);
    if (!e) return null;
    const box = new THREE.Vector3();
    const leaf = e.node.userData.leaf ?? e.node;
    leaf.getWorldPosition(box);
    box.project(this.camera);
    const rect = this.canvas.getBoundingClientRect();
    return { x: rect.left + ((box.x + 1) / 2) * rect.width, y: rect.top + ((1 - box.y) / 2) * rect.height };
  }

  _bindInput() {
    const c = this.canvas;
    c.tabIndex = 0;
    c.addEventListener("keydown", (e) => this.keys.add(e.key.toLowerCase()));
    c.addEventListener("keyup", (e) => this.keys.delete(e.key.toLowerCase()));
    c.addEventListener("blur", () => this.keys.clear());
    let drag = null;
    c.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY, moved: false }; c.focus(); });
    c.addEventListener("pointermove", (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      if (drag.moved) {
        this.yaw -= dx * 0.005;
        this.pitch = Math.max(-1.4, Math.min(1.4, this.pitch - dy * 0.005));
        drag.x = e.clientX; drag.y = e.clientY;
      }
    });
    c.addEventListener("pointerup", (e) => {
      if (drag && !drag.moved) {
        const id = this.pick(e.clientX, e.clientY);
        if (id !== null) this.onPick?.(id);
      }
      drag = null;
    });
  }

  _frame() {
    const now = performance.now();
    const dt = Math.min(0.1, (now - this._last) / 1000);
    this._last = now;
    const k = this.keys;
    const fwd = (k.has("w") || k.has("arrowup") ? 1 : 0) - (k.has("s") || k.has("arrowdown") ? 1 : 0);
    const side = (k.has("d") || k.has("arrowright") ? 1 : 0) - (k.has("a") || k.has("arrowleft") ? 1 : 0);
    if (fwd || side) {
      const step = WALK_SPEED * dt;
      const sin = Math.sin(this.yaw), cos = Math.cos(this.yaw);
      this.camera.position.x += (-sin * fwd + cos * side) * step;
      this.camera.position.z += (-cos * fwd - sin * side) * step;
    }
    this.camera.rotation.set(this.pitch, this.yaw, 0, "YXZ");
    if (fwd || side || this._lastYaw !== this.yaw) {
      this._lastYaw = this.yaw;
      const p = this.camera.position;
      const q = new THREE.Quaternion().setFromAxisAngle(new THREE.Vector3(0, 1, 0), this.yaw);
      this.onMove?.([p.x, p.y - EYE, p.z], [q.x, q.y, q.z, q.w]);
    }
    for (const a of this.avatars.values()) {
      if (a.target) a.group.position.lerp(a.target, Math.min(1, dt * 10));
    }
    this.renderer.render(this.scene, this.camera);
  }
}
