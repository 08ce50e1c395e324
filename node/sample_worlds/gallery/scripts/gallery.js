// Viewer-side script of the devnet gallery. The gate and the lamp need no script: world.json
// gives them the declarative actions "toggle:open" and "toggle:lit", which every node checks and
// replicates. This only animates the gate and answers the trophy's script action.
export const changed = {
  open(world, object) {
    world.animate(object.id, { rotation: { x: 0, y: object.properties.open ? 90 : 0, z: 0 } });
  },
};

export const actions = {
  "trophy.admire"(world, object, visitor) {
    world.say(visitor, "A trophy for running your first Flux devnet.");
  },
};
