// llm generate: prompt + image embeddings → text, with streamed partials on a second output and a bounded queue
// (latest wins per msg.topic, queue in order, or drop new while busy).
import type { NodeDef, NodeMessage } from 'node-red';
import { imageFeaturesOf } from '../lib/pipeline/image-values';
import type { PromptSegment } from '../lib/pipeline/templates';
import {
  generationOptionsFromConfig,
  generationOptionsFromMessage,
  GenerationOverrides,
  mergeGenerationOptions,
  outputFormatFromConfig,
  outputFormatFromMessage,
} from './shared/generation-options';
import { defineNode, stageTimings } from './shared/kit';

interface GenerateDef extends NodeDef {
  model: string;
  prompt: string;
  promptType: string;
  embeds: string;
  embedsType: string;
  output: string;
  outputType: string;
  maxNewTokens: string;
  minNewTokens: string;
  doSample: boolean;
  temperature: string;
  topK: string;
  topP: string;
  minP: string;
  seed: string;
  repetitionPenalty: string;
  numBeams: string;
  lengthPenalty: string;
  stopStrings: string;
  ignoreEos: boolean;
  stream: boolean;
  /** text, json (any object) or schema (the schema field). */
  outputFormat?: string;
  schema?: string;
  queuePolicy: string;
  queueLength: number | string;
  dropped: string;
}

function promptFrom(value: unknown, what: string): PromptSegment[] | string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.every((s) => s && typeof s.text === 'string' && typeof s.user === 'boolean')) return value as PromptSegment[];
  throw new Error(`${what} is not a prompt (expected the output of a prompt template node, or a string)`);
}

export = defineNode<GenerateDef, GenerationOverrides>({
  type: 'llava-generate',
  properties: { prompt: 'msg.llava.prompt', embeds: 'msg.llava.imageEmbeds', output: 'msg.payload' },
  queue: { queuePolicy: 'latest', queueLength: 1, dropped: 'status' },
  // The text, then the streamed partials.
  outputs: 2,
  holds: ['embeds'],
  configure: (def) => ({
    ...generationOptionsFromConfig(def as unknown as Record<string, unknown>),
    ...outputFormatFromConfig(def as unknown as Record<string, unknown>),
  }),
  process: async (kit, msg, out, signal) => {
    const given = (msg as { llava?: { options?: unknown; schema?: unknown } }).llava;
    const options = mergeGenerationOptions(kit.config, generationOptionsFromMessage(given?.options), outputFormatFromMessage(given?.schema));
    const embeds = await kit.read('embeds', msg);
    const image = embeds === undefined || embeds === null ? null : imageFeaturesOf(embeds, kit.describe('embeds'));
    const model = await kit.model();
    const prompt = promptFrom(await kit.read('prompt', msg), kit.describe('prompt')) ?? model.prompt({ image: image !== null });
    let seq = 0;
    const partial = (payload: string, final: boolean) =>
      out({ _msgid: msg._msgid, topic: msg.topic, payload, llava: { seq: seq++, final } } as NodeMessage, 1);
    kit.status.working('prefill');
    const result = await model.generate({
      prompt,
      image,
      options,
      signal,
      onText: kit.def.stream ? (delta) => partial(delta, false) : undefined,
      onProgress: (_tokens, rate) => kit.status.generating(rate),
    });
    if (kit.def.stream) partial('', true);
    // A JSON answer goes out parsed (it matches the schema); a cut-off one was an error at Catch.
    kit.write('output', msg, options.format ? result.json : result.text);
    // The handle was freed with the generation: don't leave it on the message.
    kit.forget('embeds', msg);
    const llava = ((msg as { llava?: Record<string, unknown> }).llava ??= {});
    llava.generation = {
      text: result.text,
      tokenIds: result.tokenIds,
      promptTokens: result.promptTokenCount,
      imageTokens: result.imageTokenCount,
      newTokens: result.tokenIds.length,
      finishReason: result.finishReason,
      provider: result.provider,
      timings: { ...result.timings, ...stageTimings(msg) },
    };
    out(msg);
  },
});
