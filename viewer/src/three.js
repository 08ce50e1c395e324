// Entry of gateway/viewer/vendor/three.js: the parts of three.js the viewer uses, plus the
// glTF loader, as one ES module (naming them lets esbuild drop the rest of the library).
export {
  AmbientLight, BoxGeometry, CanvasTexture, CapsuleGeometry, Color, CylinderGeometry,
  DirectionalLight, DoubleSide, Euler, GridHelper, Group, HemisphereLight, MathUtils, Mesh,
  MeshStandardMaterial, Object3D, PerspectiveCamera, PlaneGeometry, Quaternion, Raycaster,
  Scene, SphereGeometry, Sprite, SpriteMaterial, SRGBColorSpace, Vector2, Vector3,
  WebGLRenderer,
} from "three";
export { GLTFLoader } from "three/examples/jsm/loaders/GLTFLoader.js";
