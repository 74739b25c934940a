// image load: bytes, a base64/data-URI string, an object holding one, or an allowed file path → preprocessed pixels.
import { encodeForRemote } from '../lib/engine/image-value';
import { RemoteEngine } from '../lib/engine/remote-engine';
import { resolveImageInput } from '../lib/pipeline/image-input';
import { loadImage } from '../lib/pipeline/image-values';
import type { PreprocessOptions, ResizeMode } from '../lib/pipeline/types';
import { defineStage, IMAGE_LOAD_QUEUE_DEFAULTS, StageDef } from './shared/stage';

interface ImageLoadDef extends StageDef {
  /** Not `resize`: the editor keeps its own redraw flag under that name on every node. */
  resizeMode: 'model' | ResizeMode;
  maxInputPixels: number | string;
}

export = defineStage<ImageLoadDef, Partial<PreprocessOptions>>({
  type: 'llava-image-load',
  input: 'msg.payload',
  output: 'msg.llava.pixels',
  expected: 'an image (Buffer, base64 string, data URI or file path)',
  working: 'decoding',
  timing: 'preprocess_ms',
  queue: IMAGE_LOAD_QUEUE_DEFAULTS,
  preview: true,
  configure: (def) => {
    const maxInputPixels = Number(def.maxInputPixels) || undefined;
    return {
      ...(def.resizeMode && def.resizeMode !== 'model' ? { mode: def.resizeMode } : {}),
      ...(maxInputPixels ? { maxInputPixels } : {}),
    };
  },
  run: async (model, input, _what, _signal, kit) => loadImage(model, await resolveImageInput(input, { allowedRoots: kit.imageRoots }), kit.config),
  // The server preprocesses: send it a JPEG at the engine's longest side.
  remote: async (engine, input, _what, kit) =>
    encodeForRemote(await resolveImageInput(input, { allowedRoots: kit.imageRoots }), {
      maxSide: engine instanceof RemoteEngine ? engine.imageMaxSide : undefined,
      maxInputPixels: kit.config.maxInputPixels,
    }),
});
