// llm generate: prompt + image embeddings → text, with streamed partials on a second output and a bounded queue
// (latest wins per msg.topic, queue in order, or drop new while busy).
import type { Node, NodeAPI, NodeDef, NodeMessage } from 'node-red';
import type { GenerationOptions } from '../lib/pipeline/types';
import type { PromptSegment } from '../lib/pipeline/templates';
import { admissionFromConfig, handleInput } from './shared/input';
import { featuresFrom, stageTimings } from './shared/image-values';
import { generationOptionsFromConfig, generationOptionsFromMessage, mergeGenerationOptions } from './shared/generation-options';
import { useModel } from './shared/model-client';
import { describeProperty, readProperty, typedProperty, writeProperty } from './shared/properties';
import { StatusReporter } from './shared/status';

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

export = function register(RED: NodeAPI): void {
  function GenerateNode(this: Node, def: GenerateDef): void {
    RED.nodes.createNode(this, def);
    const status = new StatusReporter(this);
    const promptProp = typedProperty(def.prompt, def.promptType, 'msg.llava.prompt');
    const embedsProp = typedProperty(def.embeds, def.embedsType, 'msg.llava.imageEmbeds');
    const output = typedProperty(def.output, def.outputType, 'msg.payload');
    const client = useModel(RED, this, def.model, status);
    const outputs = def.dropped === 'output' ? 3 : 2;
    let admission: ReturnType<typeof admissionFromConfig>;
    let defaults: Partial<GenerationOptions>;
    try {
      admission = admissionFromConfig(def, outputs);
      defaults = generationOptionsFromConfig(def as unknown as Record<string, unknown>);
    } catch (err) {
      // A bad configuration fails every message with its reason rather than dropping them.
      status.error(err);
      handleInput(this, { status, process: () => Promise.reject(err) });
      return;
    }

    const imageOf = async (msg: NodeMessage) => {
      const v = await readProperty(RED, this, embedsProp, msg);
      return v === undefined || v === null ? null : featuresFrom(v, describeProperty(embedsProp));
    };

    handleInput(this, {
      status,
      ...admission,
      onDropped: (msg) => {
        void (async () => {
          const image = await imageOf(msg).catch(() => null);
          if (image) await (await client.model()).releaseImage(image);
        })().catch((err) => this.warn(`could not free a dropped message's image: ${(err as Error).message}`));
      },
      process: async (msg, send, signal) => {
        const options = mergeGenerationOptions(defaults, generationOptionsFromMessage((msg as { llava?: { options?: unknown } }).llava?.options));
        const image = await imageOf(msg);
        const model = await client.model();
        const prompt = promptFrom(await readProperty(RED, this, promptProp, msg), describeProperty(promptProp)) ?? model.prompt({ image: image !== null });
        let seq = 0;
        const partial = (payload: string, final: boolean) => {
          const out: (NodeMessage | null)[] = new Array(outputs).fill(null);
          out[1] = { _msgid: msg._msgid, topic: msg.topic, payload, llava: { seq: seq++, final } } as NodeMessage;
          send(out);
        };
        status.working('prefill');
        const result = await model.generate({
          prompt,
          image,
          options,
          signal,
          onText: def.stream ? (delta) => partial(delta, false) : undefined,
          onProgress: (_tokens, rate) => status.generating(rate),
        });
        if (def.stream) partial('', true);
        writeProperty(RED, this, output, msg, result.text);
        const llava = ((msg as { llava?: Record<string, unknown> }).llava ??= {});
        // The handle was freed with the generation: don't leave it on the message.
        if (embedsProp.type === 'msg') RED.util.setMessageProperty(msg, embedsProp.value, undefined);
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
        status.ready(result.provider);
        const out: (NodeMessage | null)[] = new Array(outputs).fill(null);
        out[0] = msg;
        send(out);
      },
    });
  }
  RED.nodes.registerType('llava-generate', GenerateNode);
};
