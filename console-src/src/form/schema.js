// Schema helpers for the forms: variants (top-level oneOf), uiSchema, pruning, errors.
//
// A top-level `oneOf` is a set of variants the user picks from with a selector the
// console owns (its choice lives in React state, so no re-render or submit can switch it
// behind the user's back); the form is drawn from the root schema with the chosen variant
// merged in, exactly as the server's InputSchema does when it validates.

/** The titles of the variants of `schema` (empty when it has none). */
export function variantTitles(schema) {
  return (schema.oneOf || []).map((v, i) => v.title || `Variant ${i + 1}`);
}

/** `schema` with its oneOf replaced by variant `index` merged in (variant fields first). */
export function mergeVariant(schema, index) {
  const variants = schema.oneOf || [];
  if (!variants.length) return schema;
  const variant = variants[Math.min(Math.max(index, 0), variants.length - 1)];
  const { oneOf, ...root } = schema;
  const rootProps = root.properties || {};
  const variantProps = variant.properties || {};
  const properties = {};
  Object.keys(variantProps).forEach((k) => {
    if (!(k in rootProps)) properties[k] = variantProps[k];
  });
  Object.keys(rootProps).forEach((k) => {
    properties[k] = k in variantProps ? variantProps[k] : rootProps[k];
  });
  const required = [...(root.required || [])];
  (variant.required || []).forEach((r) => {
    if (!required.includes(r)) required.push(r);
  });
  const merged = { ...root, properties, required };
  Object.entries(variant).forEach(([k, v]) => {
    if (!["properties", "required", "title", "description"].includes(k)) merged[k] = v;
  });
  return merged;
}

/** The variant the data most plausibly uses (for opening a form on existing input). */
export function guessVariant(schema, data) {
  const variants = schema.oneOf || [];
  let best = 0;
  let bestScore = -1;
  variants.forEach((v, i) => {
    const req = v.required || [];
    const score = req.filter((r) => data && data[r] !== undefined && data[r] !== "").length;
    if (score > bestScore) {
      best = i;
      bestScore = score;
    }
  });
  return best;
}

function isObjectSchema(s) {
  return s && (s.type === "object" || (s.properties && !s.type));
}

/** The uiSchema: `x-fetcher` fields get the fetcher widget, secrets a password box. */
export function uiSchemaFor(schema, extra = {}) {
  const ui = { ...extra };
  const props = schema.properties || {};
  Object.entries(props).forEach(([name, sub]) => {
    const node = { ...(ui[name] || {}) };
    if (sub["x-fetcher"]) node["ui:widget"] = "fetcher";
    else if (sub.writeOnly || sub.format === "password") node["ui:widget"] = "password";
    else if (sub.type === "string" && sub.maxLength > 500) node["ui:widget"] = "textarea";
    if (isObjectSchema(sub) && sub.properties) Object.assign(node, uiSchemaFor(sub, node));
    if (sub.type === "array" && isObjectSchema(sub.items) && sub.items.properties) {
      node.items = uiSchemaFor(sub.items, node.items || {});
    }
    if (Object.keys(node).length) ui[name] = node;
  });
  return ui;
}

function isEmpty(v) {
  if (v === undefined || v === null || v === "") return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === "object") return Object.keys(v).length === 0;
  return false;
}

/** The data to send: only fields the schema has (the chosen variant's), no empty
 * optional values or objects, integers and numbers as numbers. */
export function prune(schema, data) {
  if (data === undefined || data === null) return data;
  const type = schema && schema.type;
  if ((type === "integer" || type === "number") && typeof data === "string") {
    const t = data.trim();
    if (t !== "" && !Number.isNaN(Number(t))) {
      const n = Number(t);
      if (type === "number" || Number.isInteger(n)) return n;
    }
    return data;
  }
  if (Array.isArray(data)) {
    const items = (schema && schema.items) || {};
    return data.filter((v) => v !== undefined && v !== null).map((v) => prune(items, v));
  }
  if (typeof data === "object") {
    const props = (schema && schema.properties) || {};
    const required = new Set((schema && schema.required) || []);
    const extra = schema && schema.additionalProperties;
    const freeForm = !schema || (!schema.properties && extra !== false);
    const out = {};
    Object.entries(data).forEach(([k, v]) => {
      let sub = props[k];
      if (!sub && extra && typeof extra === "object") sub = extra;
      if (!sub && !freeForm) return; // another variant's field, or one the schema lacks
      const pruned = prune(sub || {}, v);
      if (isEmpty(pruned) && !required.has(k)) return;
      if (pruned === undefined) return;
      out[k] = pruned;
    });
    return out;
  }
  return data;
}

/** API error details (`[{field: "attendee.name", message}]`) as an RJSF errorSchema;
 * details without a field (or one the form lacks) come back in `general`. */
export function errorSchemaFrom(details, schema, prefix = []) {
  const errors = {};
  const general = [];
  (details || []).forEach((d) => {
    const path = [...prefix, ...String(d.field || "").split(/[.[\]]/).filter(Boolean)];
    if (!path.length || !hasPath(schema, path)) {
      general.push(d);
      return;
    }
    let node = errors;
    path.forEach((p) => {
      node[p] = node[p] || {};
      node = node[p];
    });
    node.__errors = [...(node.__errors || []), d.message];
  });
  return { errors, general };
}

function hasPath(schema, path) {
  let node = schema;
  for (const p of path) {
    if (!node) return false;
    if (node.properties && node.properties[p]) node = node.properties[p];
    else if (node.items && /^\d+$/.test(p)) node = node.items;
    else if (node.additionalProperties && typeof node.additionalProperties === "object")
      node = node.additionalProperties;
    else return false;
  }
  return true;
}

/** The value at a dotted path of `data`. */
export function getPath(data, path) {
  return String(path)
    .split(".")
    .reduce((node, key) => (node == null ? undefined : node[key]), data);
}
