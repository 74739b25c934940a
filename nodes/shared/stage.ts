// The shape of a LLaVA stage node (clip encode, project): read one property, run one model step, write the
// result to another property, note the step's time, pass the rest of the message on. Messages are admitted like
// llm generate's (same editor fields, same queue), so a burst faster than the step cannot pile up in the runtime.
import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { LlavaModel } from '../../lib/pipeline/llava-model';
import { admissionFromConfig, AdmissionConfig, handleInput } from './input';
import { recordTiming, StageTiming } from './image-values';
import { useModel } from './model-client';
import { describeProperty, readProperty, readRequiredProperty, typedProperty, writeProperty } from './properties';
import { StatusReporter } from './status';

export interface StageDef extends NodeDef, AdmissionConfig {
  model: string;
  input: string;
  inputType: string;
  output: string;
  outputType: string;
}

/**
 * A stage's admission when its editor fields are absent or blank (flows saved before stages had a queue): queue
 * in order, so a general flow loses nothing to a short burst, but at most this many wait, so a sustained burst
 * cannot hold unbounded pixels or features. Drops are counted in the status.
 */
export const STAGE_QUEUE_DEFAULTS = { queuePolicy: 'fifo', queueLength: 10, dropped: 'status' } as const;

export interface Stage<I> {
  /** Defaults of the input and output properties, e.g. "msg.llava.pixels". */
  input: string;
  output: string;
  /** What the input should be, for the error when it is missing. */
  expected: string;
  /** Status text while the step runs. */
  working: string;
  timing: StageTiming;
  /** The step frees its input (a handle): remove it from the message so no dangling handle travels on. */
  consumesInput?: boolean;
  parse(value: unknown, what: string): I;
  run(model: LlavaModel, input: I, signal: AbortSignal): Promise<{ value: unknown; ms: number }>;
  /** Free what the input holds in the runtime when its message is dropped (it will never reach `run`). */
  release?(model: LlavaModel, input: I): Promise<void>;
}

export function runStageNode<I>(RED: NodeAPI, node: Node, def: StageDef, stage: Stage<I>): void {
  const status = new StatusReporter(node);
  const input = typedProperty(def.input, def.inputType, stage.input);
  const output = typedProperty(def.output, def.outputType, stage.output);
  const client = useModel(RED, node, def.model, status);
  // The dropped-message output, when chosen, is the second one.
  const outputs = def.dropped === 'output' ? 2 : 1;
  let admission: ReturnType<typeof admissionFromConfig>;
  try {
    admission = admissionFromConfig(
      {
        queuePolicy: def.queuePolicy ?? STAGE_QUEUE_DEFAULTS.queuePolicy,
        queueLength: def.queueLength === undefined || def.queueLength === '' ? STAGE_QUEUE_DEFAULTS.queueLength : def.queueLength,
        dropped: def.dropped ?? STAGE_QUEUE_DEFAULTS.dropped,
      },
      outputs,
    );
  } catch (err) {
    // A bad configuration fails every message with its reason rather than dropping them.
    status.error(err);
    handleInput(node, { status, process: () => Promise.reject(err) });
    return;
  }
  const release = stage.release;
  handleInput(node, {
    status,
    ...admission,
    onDropped: release
      ? (msg) => {
          void (async () => {
            const value = await readProperty(RED, node, input, msg);
            if (value === undefined || value === null) return;
            await release(await client.model(), stage.parse(value, describeProperty(input)));
          })().catch((err) => node.warn(`could not free a dropped message's input: ${(err as Error).message}`));
        }
      : undefined,
    process: async (msg, send, signal) => {
      const value = stage.parse(await readRequiredProperty(RED, node, input, msg, stage.expected), describeProperty(input));
      const model = await client.model();
      status.working(stage.working);
      const result = await stage.run(model, value, signal);
      if (stage.consumesInput && input.type === 'msg') RED.util.setMessageProperty(msg, input.value, undefined);
      writeProperty(RED, node, output, msg, result.value);
      recordTiming(msg, stage.timing, result.ms);
      status.ready(model.provider);
      send(outputs === 1 ? msg : [msg, null]);
    },
  });
}
