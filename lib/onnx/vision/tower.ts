// What a vision tower module provides to the builder: its weight names and shapes, its encoder graph and its usual
// image processor (its config class defaults are in lib/model/hf-config.ts, shared with the folder loader). lib/onnx/vision/index.ts picks the module by vision_config.model_type.
import type { LlavaConfig, VisionConfig } from '../../model/config';
import type { BuildContext } from '../blocks';
import type { WeightShapes } from '../weight-names';

export interface VisionTower {
  /** vision_config.model_type, e.g. clip_vision_model. */
  modelType: string;
  /** Tokens the encoder outputs per image: patches, plus a CLS token if the tower has one. */
  tokens(v: VisionConfig): number;
  /** Checks the config; throws a clear error for what the graph cannot build. */
  check(v: VisionConfig): void;
  /** Weights of the embeddings and of encoder layers 0…layers−1 (post-norms and heads are never used by LLaVA). */
  weightShapes(v: VisionConfig, layers: number): WeightShapes;
  /** preprocessor_config.json for a folder built without the checkpoint's own (the tower's usual processor). */
  imageProcessor(v: VisionConfig): Record<string, unknown>;
  /** hidden_states[layers] on pixel_values [B, C, S, S]: the embeddings (index 0) then `layers` encoder layers. */
  addEncoder(ctx: BuildContext, c: LlavaConfig, pixelValues: string, layers: number): string;
}

/** Patches per side: image_size / patch_size floored (a stride-patch conv drops a partial patch at the edge). */
export function patchGrid(v: VisionConfig): number {
  return Math.floor(v.image_size / v.patch_size);
}

/** A preprocessor_config.json of a LlavaProcessor: bicubic resize (`resize`: size and crop fields), /255, normalize. */
export function imageProcessorJson(type: string, resize: Record<string, unknown>, mean: number[], std: number[]): Record<string, unknown> {
  return {
    image_processor_type: type,
    processor_class: 'LlavaProcessor',
    do_resize: true,
    ...resize,
    resample: 3,
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: mean,
    image_std: std,
    do_convert_rgb: true,
  };
}
