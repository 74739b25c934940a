// The shape of a LLaVA stage node (image load, clip encode, project): read one property, run one model step, write
// the result to another property, note the step's time, pass the rest of the message on. Messages are admitted
// through a queue like llm generate's (same editor fields), so a burst faster than the step cannot pile up.
import type { NodeDef } from 'node-red';
import { isEncodedImageValue } from '../../lib/engine/image-value';
import type { Engine } from '../../lib/engine/types';
import type { StageResult } from '../../lib/pipeline/image-values';
import type { LlavaModel } from '../../lib/pipeline/llava-model';
import { defineNode, Kit, QueueDefaults, StageTiming } from './kit';

export interface StageDef extends NodeDef {
  model: string;
  input: string;
  inputType: string;
  output: string;
  outputType: string;
  queuePolicy?: string;
  queueLength?: number | string;
  /** Seconds a message may wait; empty = no limit. */
  maxWait?: string;
  dropped?: string;
}

/**
 * A stage's admission when its editor fields are absent or blank (flows saved before stages had a queue): queue
 * in order, so a general flow loses nothing to a short burst, but at most this many wait, so a sustained burst
 * cannot hold unbounded pixels or features. Drops are counted in the status.
 */
export const STAGE_QUEUE_DEFAULTS: QueueDefaults = { queuePolicy: 'fifo', queueLength: 10, dropped: 'status' };

/**
 * Image load's: it is where bursts from outside arrive. Images are decoded one at a time, so decoded pixels stay
 * bounded; a waiting message holds only the bytes it arrived with, so more may wait there than at later stages.
 */
export const IMAGE_LOAD_QUEUE_DEFAULTS: QueueDefaults = { queuePolicy: 'fifo', queueLength: 100, dropped: 'status' };

export interface Stage<D extends StageDef, C> {
  type: string;
  /** Defaults of the input and output properties, e.g. "msg.llava.pixels". */
  input: string;
  output: string;
  /** What the input should be, for the error when it is missing. */
  expected: string;
  /** Status text while the step runs. */
  working: string;
  timing: StageTiming;
  /** Admission defaults (default STAGE_QUEUE_DEFAULTS). */
  queue?: QueueDefaults;
  /** The editor preview of the step's output (an image value), with the node's preview button. */
  preview?: boolean;
  /** The step frees its input (a handle): remove it from the message so no dangling handle travels on. */
  consumesInput?: boolean;
  configure?(def: D): C;
  /** One step on the input's value (`what` names the property, for errors). */
  run(model: LlavaModel, input: unknown, what: string, signal: AbortSignal, kit: Kit<D, C>): Promise<StageResult<unknown>>;
  /**
   * The step when the engine is remote (the server runs the vision stages itself). Default: pass the encoded image
   * on unchanged, and say so in the status.
   */
  remote?(engine: Engine, input: unknown, what: string, kit: Kit<D, C>): Promise<StageResult<unknown>>;
}

/** What a stage without a remote step does with a remote engine: pass the encoded image on. */
function passOn(input: unknown, what: string): StageResult<unknown> {
  if (!isEncodedImageValue(input)) {
    throw new Error(`${what} is not an encoded image: with a remote engine, image load must use the same llava-model (it then passes the JPEG on)`);
  }
  return { value: input, ms: 0 };
}

export function defineStage<D extends StageDef, C = undefined>(stage: Stage<D, C>) {
  return defineNode<D, C>({
    type: stage.type,
    properties: { input: stage.input, output: stage.output },
    queue: stage.queue ?? STAGE_QUEUE_DEFAULTS,
    // Whatever image value the input holds is freed when the message is lost before the step consumed it.
    holds: ['input'],
    preview: stage.preview,
    configure: stage.configure,
    process: async (kit, msg, out, signal) => {
      const value = await kit.readRequired('input', msg, stage.expected);
      const engine = await kit.engine();
      kit.status.working(stage.working);
      const model = engine.kind === 'remote' ? null : await kit.model();
      const result = model
        ? await stage.run(model, value, kit.describe('input'), signal, kit)
        : await (stage.remote ? stage.remote(engine, value, kit.describe('input'), kit) : passOn(value, kit.describe('input')));
      if (stage.consumesInput) kit.forget('input', msg);
      kit.write('output', msg, result.value);
      kit.timing(msg, stage.timing, result.ms);
      // The output is what the model gets: pixels (undone with the model's normalisation) or the remote's JPEG.
      kit.preview({ image: result.value, scale: model?.preset.preprocess, ms: result.ms });
      out(msg);
      return engine.kind === 'remote' && !stage.remote ? `passed on (remote engine)` : undefined;
    },
  });
}
