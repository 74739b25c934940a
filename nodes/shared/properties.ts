// Reading and writing the TypedInput properties every LLaVA node exposes ("input: msg.payload",
// "output: msg.llava.pixels"), so each node handles msg / flow / global / env / jsonata the same way.
import type { Node, NodeAPI, NodeMessage } from 'node-red';

/** What a TypedInput saves: the text and its type ("msg", "flow", "global", "str", "num", "json", "env", …). */
export interface TypedProperty {
  value: string;
  type: string;
}

/** Types an output property may be written to. */
export const WRITABLE_TYPES = ['msg', 'flow', 'global'] as const;

/** "msg.payload", "flow.camera", "str \"hi\"" — for error messages and help. */
export function describeProperty(prop: TypedProperty): string {
  if ((WRITABLE_TYPES as readonly string[]).includes(prop.type)) return `${prop.type}.${prop.value}`;
  return `${prop.type} ${JSON.stringify(prop.value)}`;
}

/**
 * A TypedProperty from a node's config fields, e.g. typedProperty(config.input, config.inputType, 'msg.payload').
 * Falls back to the given default ("msg.payload") when the field is empty.
 */
export function typedProperty(value: unknown, type: unknown, fallback: string): TypedProperty {
  if (typeof value === 'string' && value !== '') {
    return { value, type: typeof type === 'string' && type ? type : 'msg' };
  }
  const dot = fallback.indexOf('.');
  return { type: fallback.slice(0, dot), value: fallback.slice(dot + 1) };
}

/** Evaluate a property for one message (JSONata and context stores are asynchronous, so this always is). */
export function readProperty(RED: NodeAPI, node: Node, prop: TypedProperty, msg: NodeMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    try {
      RED.util.evaluateNodeProperty(prop.value, prop.type, node, msg, (err, result) => {
        if (err) reject(new Error(`cannot read ${describeProperty(prop)}: ${err.message}`));
        else resolve(result);
      });
    } catch (err) {
      reject(new Error(`cannot read ${describeProperty(prop)}: ${(err as Error).message}`));
    }
  });
}

/** Like readProperty, but a missing value (undefined or null) is an error that names the property. */
export async function readRequiredProperty(RED: NodeAPI, node: Node, prop: TypedProperty, msg: NodeMessage, expected: string): Promise<unknown> {
  const value = await readProperty(RED, node, prop, msg);
  if (value === undefined || value === null) throw new Error(`${describeProperty(prop)} is empty: expected ${expected}`);
  return value;
}

/** Write a value to msg.<path>, flow.<key> or global.<key> (creating missing parents on msg). */
export function writeProperty(RED: NodeAPI, node: Node, prop: TypedProperty, msg: NodeMessage, value: unknown): void {
  switch (prop.type) {
    case 'msg':
      if (!RED.util.setMessageProperty(msg, prop.value, value, true)) {
        throw new Error(`cannot write ${describeProperty(prop)}`);
      }
      return;
    case 'flow':
    case 'global': {
      const { store, key } = RED.util.parseContextStore(prop.value);
      node.context()[prop.type].set(key, value, store);
      return;
    }
    default:
      throw new Error(`an output property must be msg, flow or global, got ${describeProperty(prop)}`);
  }
}
