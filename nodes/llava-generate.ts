// llm generate: prompt + image embeddings → text, with streamed partials on a second output and a bounded queue
// (latest wins per msg.topic, queue in order, or drop new while busy). Given pixels instead of embeddings (image
// load → prompt template → llm generate) it runs the vision stages itself; with a remote engine it sends the
// encoded image and the question to the server.
import type { NodeDef, NodeMessage } from 'node-red';
import { isEncodedImageValue } from '../lib/engine/image-value';
import type { ChatPrompt } from '../lib/engine/types';
import { encodeImage, imageFeaturesOf, isPixelsValue, loadImage, projectImage } from '../lib/pipeline/image-values';
import type { ImageFeatures, LlavaModel } from '../lib/pipeline/llava-model';
import type { PromptSegment } from '../lib/pipeline/templates';
import type { PixelScale } from '../lib/engine/thumbnail';
import {
  generationOptionsFromConfig,
  generationOptionsFromMessage,
  GenerationOverrides,
  mergeGenerationOptions,
  outputFormatFromConfig,
  outputFormatFromMessage,
} from './shared/generation-options';
import { defineNode, stageTimings } from './shared/kit';
import { openAiResponseFormat, parseCheckedJsonAnswer } from '../lib/pipeline/generation/json-schema';

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
  maxWait?: string;
  dropped: string;
}

function promptFrom(value: unknown, what: string): PromptSegment[] | string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  const segments = value as Array<{ text?: unknown; user?: unknown } | null>;
  if (Array.isArray(value) && segments.every((s) => s && typeof s.text === 'string' && typeof s.user === 'boolean')) return value as PromptSegment[];
  throw new Error(`${what} is not a prompt (expected the output of a prompt template node, or a string)`);
}

/** The question for a remote engine: the prompt template's msg.llava.chat, or a prompt given as text. */
function chatFrom(msg: NodeMessage, prompt: PromptSegment[] | string | undefined, what: string): ChatPrompt {
  const chat = (msg as { llava?: { chat?: unknown } }).llava?.chat;
  if (chat && typeof chat === 'object' && !Array.isArray(chat)) return chat;
  if (typeof prompt === 'string') return prompt.trim() ? { question: prompt } : {};
  if (prompt === undefined) return {};
  throw new Error(
    `${what} is a rendered prompt but msg.llava.chat is missing: a remote engine needs the question (use a prompt template node, or give the prompt as text)`,
  );
}

/** The image features to generate from: a handle (the five-node flow), or pixels / an image whose vision stages run here. */
async function imageFeatures(
  model: LlavaModel,
  value: unknown,
  what: string,
  signal: AbortSignal,
): Promise<{ features: ImageFeatures; timings: Record<string, number> }> {
  if (isEncodedImageValue(value)) {
    const pixels = await loadImage(model, value.data);
    const more = await imageFeatures(model, pixels.value, what, signal);
    return { features: more.features, timings: { preprocess_ms: pixels.ms, ...more.timings } };
  }
  if (isPixelsValue(value)) {
    const encoded = await encodeImage(model, value, what, signal);
    const projected = await projectImage(model, encoded.value, what, signal);
    return { features: imageFeaturesOf(projected.value, what), timings: { vision_ms: encoded.ms, projector_ms: projected.ms } };
  }
  return { features: imageFeaturesOf(value, what), timings: {} };
}

export = defineNode<GenerateDef, GenerationOverrides>({
  type: 'llava-generate',
  // `pixels` has no editor field: where image load writes when the flow skips clip encode and project.
  properties: { prompt: 'msg.llava.prompt', embeds: 'msg.llava.imageEmbeds', pixels: 'msg.llava.pixels', output: 'msg.payload' },
  queue: { queuePolicy: 'latest', queueLength: 1, dropped: 'status' },
  preview: true,
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
    const [imageValue, imageProperty] = embeds === undefined || embeds === null ? [await kit.read('pixels', msg), 'pixels'] : [embeds, 'embeds'];
    const hasImage = imageValue !== undefined && imageValue !== null;
    const engine = await kit.engine();
    const prompt = promptFrom(await kit.read('prompt', msg), kit.describe('prompt'));
    let seq = 0;
    const partial = (payload: string, final: boolean) => out({ _msgid: msg._msgid, topic: msg.topic, payload, llava: { seq: seq++, final } }, 1);
    const onText = kit.def.stream ? (delta: string) => partial(delta, false) : undefined;
    kit.status.working('prefill');
    const llava = ((msg as { llava?: Record<string, unknown> }).llava ??= {});
    const started = performance.now();
    // The editor preview: the answer with the frame behind it, i.e. the image value given (pixels or a remote
    // engine's JPEG) or, when that was image features (a handle), the pixels image load left on the message.
    const previewFrame = async (text: string, scale?: PixelScale) => {
      if (!kit.previewing) return;
      const frame = imageProperty === 'embeds' && !isEncodedImageValue(imageValue) ? await kit.read('pixels', msg) : imageValue;
      kit.preview({ image: frame, scale, text, ms: performance.now() - started });
    };

    if (engine.kind === 'remote') {
      if (!hasImage)
        throw new Error(`no image: ${kit.describe('embeds')} and ${kit.describe('pixels')} are empty (a remote engine takes an image with each request)`);
      if (!isEncodedImageValue(imageValue)) {
        throw new Error(
          `${kit.describe(imageProperty)} holds no encoded image: with a remote engine, image load must use the same llava-model (it then passes the JPEG on)`,
        );
      }
      const { format, ...sampling } = options;
      const result = await engine.generate({
        image: imageValue.data,
        chat: chatFrom(msg, prompt, kit.describe('prompt')),
        options: sampling,
        // The server constrains the answer; it is checked against the schema here.
        ...(format ? { responseFormat: openAiResponseFormat(format) } : {}),
        signal,
        onEvent: (e) => (e.type === 'text' ? onText?.(e.delta) : kit.status.generating(e.tokensPerSecond)),
      });
      if (kit.def.stream) partial('', true);
      kit.write('output', msg, format ? parseCheckedJsonAnswer(result.text, result.finishReason, result.usage?.completionTokens ?? 0, format) : result.text);
      kit.forget(imageProperty, msg);
      llava.generation = {
        text: result.text,
        promptTokens: result.usage?.promptTokens,
        newTokens: result.usage?.completionTokens,
        finishReason: result.finishReason,
        provider: result.ranOn,
        timings: { ...result.timings, ...stageTimings(msg) },
      };
      await previewFrame(result.text);
      out(msg);
      return;
    }

    const model = await kit.model();
    const image = hasImage ? await imageFeatures(model, imageValue, kit.describe(imageProperty), signal) : null;
    const result = await model.generate({
      prompt: prompt ?? model.prompt({ image: image !== null }),
      image: image?.features ?? null,
      options,
      signal,
      onText,
      onProgress: (_tokens, rate) => kit.status.generating(rate),
    });
    if (kit.def.stream) partial('', true);
    // A JSON answer goes out parsed (it matches the schema); a cut-off one was an error at Catch.
    kit.write('output', msg, options.format ? result.json : result.text);
    // The handle was freed with the generation: don't leave it on the message.
    kit.forget(imageProperty, msg);
    llava.generation = {
      text: result.text,
      tokenIds: result.tokenIds,
      promptTokens: result.promptTokenCount,
      imageTokens: result.imageTokenCount,
      newTokens: result.tokenIds.length,
      finishReason: result.finishReason,
      provider: result.provider,
      timings: { ...result.timings, ...stageTimings(msg), ...image?.timings },
    };
    await previewFrame(result.text, model.preset.preprocess);
    out(msg);
  },
});
