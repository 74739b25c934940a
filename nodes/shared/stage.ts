// The shape of a LLaVA stage node (clip encode, project): read one property, run one model step, write the
// result to another property, note the step's time, pass the rest of the message on.
import type { Node, NodeAPI, NodeDef } from 'node-red';
import type { LlavaModel } from '../../lib/pipeline/llava-model';
import { handleInput } from './input';
import { recordTiming, StageTiming } from './image-values';
import { useModel } from './model-client';
import { describeProperty, readRequiredProperty, typedProperty, writeProperty } from './properties';
import { StatusReporter } from './status';

export interface StageDef extends NodeDef {
  model: string;
  input: string;
  inputType: string;
  output: string;
  outputType: string;
}

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
}

export function runStageNode<I>(RED: NodeAPI, node: Node, def: StageDef, stage: Stage<I>): void {
  const status = new StatusReporter(node);
  const input = typedProperty(def.input, def.inputType, stage.input);
  const output = typedProperty(def.output, def.outputType, stage.output);
  const client = useModel(RED, node, def.model, status);
  handleInput(node, {
    status,
    process: async (msg, send, signal) => {
      const value = stage.parse(await readRequiredProperty(RED, node, input, msg, stage.expected), describeProperty(input));
      const model = await client.model();
      status.working(stage.working);
      const result = await stage.run(model, value, signal);
      if (stage.consumesInput && input.type === 'msg') RED.util.setMessageProperty(msg, input.value, undefined);
      writeProperty(RED, node, output, msg, result.value);
      recordTiming(msg, stage.timing, result.ms);
      status.ready(model.provider);
      send(msg);
    },
  });
}
