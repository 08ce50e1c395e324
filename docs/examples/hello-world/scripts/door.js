// Example world script for docs/examples/hello-world (illustrative: the script runtime API is
// defined by the viewer). world.json names the actions "door.toggle" and "sign.read".
export const actions = {
  "door.toggle"(world, object) {
    const open = !object.properties.open;
    world.update(object.id, {
      properties: { ...object.properties, open },
      rotation: { x: 0, y: open ? 90 : 0, z: 0 },
    });
  },
  "sign.read"(world, object, visitor) {
    world.say(visitor, object.properties.text);
  },
};
