// One definition per LLaVA flow node: its typed properties, whether it uses a llava-model, its admission queue, its
// outputs, the properties that may hold an image in the runtime, and what it does with one message. The kit does
// the rest the same way for every node:
// - configuration: read once when the node starts; a bad one shows in the status and fails each message with its
//   reason (a Catch node sees it), so nothing is silently dropped;
// - the model: the llava-model's loading / ready (provider) / error state mirrored in the status;
// - admission: the queue from the editor fields, or the node's defaults for flows saved without them;
// - a message that goes no further (dropped or failed) frees the image values it holds;
// - after each message: "ready (provider)"; stage timings go on msg.llava.timings;
// - with `preview`: the editor preview under the node (preview.ts), its button's endpoint, its on/off property.
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from 'node-red';
import type { Engine } from '../../lib/engine/types';
import type { LlavaModel } from '../../lib/pipeline/llava-model';
import { releaseImageValues } from '../../lib/pipeline/image-values';
import { admissionFromConfig, AdmissionConfig, handleInput, InputOptions } from './input';
import { ModelClient, useModel } from './model-client';
import { PreviewFrame, registerPreviewAdmin, startPreview } from './preview';
import { describeProperty, readProperty, readRequiredProperty, typedProperty, TypedProperty, writeProperty } from './properties';
import type { QueuePolicy } from './queue';
import { StatusReporter } from './status';

/** What a node does when its editor has no queue fields (a flow saved before it had them) or they are blank. */
export interface QueueDefaults {
  queuePolicy: QueuePolicy;
  queueLength: number;
  dropped: 'status' | 'output' | 'error';
}

/** The timings the stages before llm generate note on msg.llava.timings. */
export type StageTiming = 'preprocess_ms' | 'vision_ms' | 'projector_ms';
const STAGE_TIMINGS: readonly StageTiming[] = ['preprocess_ms', 'vision_ms', 'projector_ms'];

export interface NodeKind<D extends NodeDef, C> {
  type: string;
  /** Typed properties: the config field naming each (its type is in `<field>Type`) → its default, e.g. 'msg.payload'. */
  properties: Record<string, string>;
  /** Whether this configuration uses a llava-model (default: always). */
  usesModel?: (def: D) => boolean;
  /** An admission queue (one job at a time); without one every message runs at once. */
  queue?: QueueDefaults;
  /** The node's own outputs (default 1); "send dropped messages to an output" adds one after them. */
  outputs?: number;
  /** Properties whose value may be an image value held in the runtime, freed when the message goes no further. */
  holds?: readonly string[];
  /** Whether the node has the editor preview (its `preview` property and button). */
  preview?: boolean;
  /** Reads the configuration once; what it throws fails every message with its reason. */
  configure?(def: D): C;
  /**
   * Handles one admitted message; throwing ends it with done(err). Honour `signal` (the node is closing). A
   * returned text replaces "ready (provider)" in the status afterwards (e.g. "passed on to the remote engine").
   */
  process(kit: Kit<D, C>, msg: NodeMessageInFlow, out: Output, signal: AbortSignal): Promise<void | string>;
}

/** Sends a message on output `output` (0-based) of the node's outputs. */
export type Output = (msg: NodeMessage, output?: number) => void;

export interface Kit<D extends NodeDef, C> {
  readonly RED: NodeAPI;
  readonly node: Node;
  readonly def: D;
  readonly config: C;
  readonly status: StatusReporter;
  /** The llava-model's model; rejects with why there is none (not configured, failed to load, remote engine). */
  model(): Promise<LlavaModel>;
  /** The llava-model's engine (local runtime or remote server). */
  engine(): Promise<Engine>;
  /** Folders image load may read file paths from. */
  readonly imageRoots: string[];
  property(name: string): TypedProperty;
  /** "msg.payload", for error messages. */
  describe(name: string): string;
  read(name: string, msg: NodeMessage): Promise<unknown>;
  /** Like read, but a missing value is an error naming the property and what it should hold. */
  readRequired(name: string, msg: NodeMessage, expected: string): Promise<unknown>;
  write(name: string, msg: NodeMessage, value: unknown): void;
  /** Removes a consumed value (a freed handle) from the message, so it travels no further. */
  forget(name: string, msg: NodeMessage): void;
  /** Notes a stage's time on msg.llava.timings. */
  timing(msg: NodeMessage, stage: StageTiming, ms: number): void;
  /** Whether the editor preview is on: only then is a frame worth gathering for preview(). */
  readonly previewing: boolean;
  /** Offers the editor preview the latest frame (sent at most once a second; ignored while it is off). */
  preview(frame: PreviewFrame): void;
}

/** Returns the module function Node-RED calls with RED: it registers the node type. */
export function defineNode<D extends NodeDef, C = undefined>(kind: NodeKind<D, C>): (RED: NodeAPI) => void {
  return function register(RED: NodeAPI): void {
    function LlavaNode(this: Node, def: D): void {
      RED.nodes.createNode(this, def);
      startNode(RED, this, def, kind);
    }
    RED.nodes.registerType(kind.type, LlavaNode);
    if (kind.preview) registerPreviewAdmin(RED);
  };
}

/** The stage timings a message carries (llm generate reports them with its own). */
export function stageTimings(msg: object): Partial<Record<StageTiming, number>> {
  const t = (msg as { llava?: { timings?: Record<string, unknown> } }).llava?.timings ?? {};
  const out: Partial<Record<StageTiming, number>> = {};
  for (const k of STAGE_TIMINGS) if (typeof t[k] === 'number') out[k] = t[k];
  return out;
}

function startNode<D extends NodeDef, C>(RED: NodeAPI, node: Node, def: D, kind: NodeKind<D, C>): void {
  const status = new StatusReporter(node);
  const fields = def as unknown as Record<string, unknown>;
  const preview = kind.preview ? startPreview(RED, node, fields.preview === true) : null;
  const properties = new Map(Object.entries(kind.properties).map(([name, fallback]) => [name, typedProperty(fields[name], fields[`${name}Type`], fallback)]));
  const property = (name: string): TypedProperty => {
    const p = properties.get(name);
    if (!p) throw new Error(`${kind.type} has no property ${name}`);
    return p;
  };
  const outputs = (kind.outputs ?? 1) + (kind.queue && (fields.dropped ?? kind.queue.dropped) === 'output' ? 1 : 0);

  let config: C;
  let admission: Pick<InputOptions, 'queue' | 'dropped'> = {};
  try {
    if (kind.queue) admission = admissionFromConfig(withDefaults(fields, kind.queue), outputs);
    config = kind.configure ? kind.configure(def) : (undefined as C);
  } catch (err) {
    // One policy for a bad configuration: every message fails with its reason rather than being dropped.
    status.error(err);
    handleInput(node, { status, process: () => Promise.reject(err) });
    return;
  }

  const client: ModelClient | null = (kind.usesModel?.(def) ?? true) ? useModel(RED, node, fields.model, status) : null;
  const kit: Kit<D, C> = {
    RED,
    node,
    def,
    config,
    status,
    model: () => (client ? client.model() : Promise.reject(new Error(`${kind.type}: this configuration uses no model`))),
    engine: () => (client ? client.engine() : Promise.reject(new Error(`${kind.type}: this configuration uses no model`))),
    imageRoots: client?.imageRoots ?? [],
    property,
    describe: (name) => describeProperty(property(name)),
    read: (name, msg) => readProperty(RED, node, property(name), msg),
    readRequired: (name, msg, expected) => readRequiredProperty(RED, node, property(name), msg, expected),
    write: (name, msg, value) => writeProperty(RED, node, property(name), msg, value),
    forget: (name, msg) => {
      const p = property(name);
      if (p.type === 'msg') RED.util.setMessageProperty(msg, p.value, undefined);
    },
    timing: (msg, stage, ms) => {
      const m = msg as { llava?: { timings?: Record<string, number> } };
      m.llava ??= {};
      m.llava.timings = { ...m.llava.timings, [stage]: ms };
    },
    get previewing() {
      return preview?.enabled ?? false;
    },
    preview: (frame) => preview?.offer(frame),
  };

  handleInput(node, {
    status,
    ...admission,
    release: async (msg) => {
      const llava = (msg as { llava?: unknown }).llava;
      const carried: unknown[] = llava && typeof llava === 'object' ? Object.values(llava) : [];
      const held = await Promise.all((kind.holds ?? []).map((name) => kit.read(name, msg).catch(() => undefined)));
      await releaseImageValues([...held, ...carried]);
    },
    process: async (msg, send, signal) => {
      const out: Output = (m, output = 0) => {
        const all = new Array<NodeMessage | null>(outputs).fill(null);
        all[output] = m;
        send(all);
      };
      const note = await kind.process(kit, msg, out, signal);
      if (note) status.done(note);
      else if (client) status.ready((await client.engine()).label);
    },
  });
}

/** The editor's queue fields, with the node's defaults where a field is absent or blank. */
function withDefaults(fields: Record<string, unknown>, defaults: QueueDefaults): AdmissionConfig {
  const given = (name: keyof QueueDefaults) => (fields[name] === undefined || fields[name] === '' ? defaults[name] : fields[name]);
  // No node has a waiting limit by default.
  return { queuePolicy: given('queuePolicy'), queueLength: given('queueLength'), maxWait: fields.maxWait, dropped: given('dropped') };
}
