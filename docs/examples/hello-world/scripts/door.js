// Example world script for docs/examples/hello-world (illustrative: the script runtime API is
// defined by the viewer). The door needs no script to open: world.json gives it the declarative
// action "toggle:open", which every node checks and replicates. This script only animates the
// door when its "open" property changes, and handles the sign's script action "sign.read".
export const changed = {
  open(world, object) {
    world.animate(object.id, { rotation: { x: 0, y: object.properties.open ? 90 : 0, z: 0 } });
  },
};

export const actions = {
  "sign.read"(world, object, visitor) {
    world.say(visitor, object.properties.text);
  },
};
