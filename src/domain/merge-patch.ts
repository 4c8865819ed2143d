// JSON merge patch (RFC 7396). A patch that is an object merges into the target member by member:
// a null member removes that member, an object member merges recursively into the target's member
// (an absent or non-object one counting as {}), any other value (arrays included) replaces it. A
// patch that is not an object replaces the target whole. Neither input is modified; members are
// defined as own properties, so even a "__proto__" member stays data.

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else Object.defineProperty(out, key, { value: mergePatch(out[key], value), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
