// This process's ONNX runtime as an engine: a loaded LlavaModel runs the whole request (preprocess → vision →
// projector → prompt → decoder) in the shared inference worker.
import { LlavaModel } from '../pipeline/llava-model';
import type { Engine, EngineRequest, EngineResult, EngineState } from './types';

export class LocalEngine implements Engine {
  readonly kind = 'local';

  /** The model stays reachable for callers that run its stages one by one (the five-node flow). */
  constructor(readonly model: LlavaModel) {}

  get label(): string {
    return this.model.provider;
  }

  async generate(request: EngineRequest): Promise<EngineResult> {
    const started = performance.now();
    const onEvent = request.onEvent;
    const image = await this.model.preprocess(request.image, request.maxInputPixels ? { maxInputPixels: request.maxInputPixels } : {});
    const features = await this.model.encodeImage(image, request.signal);
    const embeds = await this.model.project(features, request.signal);
    const r = await this.model.generate({
      prompt: request.rendered ?? this.model.prompt({ ...request.chat, image: true }),
      image: embeds,
      options: request.options,
      signal: request.signal,
      onText: onEvent && ((delta) => onEvent({ type: 'text', delta })),
      onProgress: onEvent && ((tokens, tokensPerSecond) => onEvent({ type: 'progress', tokens, tokensPerSecond })),
    });
    const vision = image.ms + features.ms + embeds.ms;
    return {
      text: r.text,
      finishReason: r.finishReason,
      usage: { promptTokens: r.promptTokenCount, completionTokens: r.tokenIds.length, totalTokens: r.promptTokenCount + r.tokenIds.length },
      timings: {
        ...r.timings,
        preprocess_ms: image.ms,
        vision_ms: features.ms,
        projector_ms: embeds.ms,
        first_token_ms: vision + r.timings.first_token_ms,
        total_ms: performance.now() - started,
      },
      ranOn: r.provider,
      tokenIds: r.tokenIds,
    };
  }

  async check(): Promise<EngineState> {
    return { state: 'ready', detail: this.model.provider };
  }

  async close(): Promise<void> {
    this.model.close();
  }
}
