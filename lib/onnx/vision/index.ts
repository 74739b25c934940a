// The vision side of a LLaVA graph: the tower module for vision_config.model_type, the selected hidden state
// (vision_feature_layer, HF indexing: 0 = embeddings, i = output of layer i, −1 = last layer) and the select
// strategy ('default' drops the first token, as transformers' `[:, 1:]`; 'full' keeps all). Layers after the
// selected one are not built.
import type { LlavaConfig } from '../../model/config';
import { VISION_IO } from '../../model/graph-io';
import type { BuildContext, QuantOptions } from '../blocks';
import { Graph } from '../graph';
import { addProjector } from '../projector';
import type { WeightShapes } from '../weight-names';
import type { WeightSource } from '../weights';
import { CLIP_VISION } from './clip';
import { SIGLIP_VISION } from './siglip';
import type { VisionTower } from './tower';

export const VISION_TOWERS: readonly VisionTower[] = [CLIP_VISION, SIGLIP_VISION];

export function visionTower(c: LlavaConfig): VisionTower {
  const type = c.vision_config.model_type;
  const tower = VISION_TOWERS.find((t) => t.modelType === type);
  if (!tower) throw new Error(`vision tower "${type}" is not supported (supported: ${VISION_TOWERS.map((t) => t.modelType).join(', ')})`);
  return tower;
}

/** How many encoder layers run to produce the selected hidden state. */
export function visionLayersUsed(c: LlavaConfig): number {
  const n = c.vision_config.num_hidden_layers;
  const l = c.vision_feature_layer;
  const index = l < 0 ? n + 1 + l : l;
  if (!Number.isInteger(l) || index < 0 || index > n) {
    throw new Error(`vision_feature_layer ${l} is out of range for a ${n}-layer vision tower (−${n + 1}…${n})`);
  }
  return index;
}

/** Number of feature tokens per image after the select strategy. */
export function visionTokenCount(c: LlavaConfig): number {
  const tokens = visionTower(c).tokens(c.vision_config);
  return c.vision_feature_select_strategy === 'default' ? tokens - 1 : tokens;
}

/** The vision weights the graph reads: embeddings and the layers up to the selected one. */
export function visionWeightShapes(c: LlavaConfig, layers = c.vision_config.num_hidden_layers): WeightShapes {
  return visionTower(c).weightShapes(c.vision_config, layers);
}

/** The tower module for the config, after checking what its graph cannot build (a clear error). */
export function checkVisionConfig(c: LlavaConfig): VisionTower {
  const tower = visionTower(c);
  const v = c.vision_config;
  tower.check(v);
  if (v.hidden_size % v.num_attention_heads !== 0) throw new Error(`vision hidden_size ${v.hidden_size} is not divisible by ${v.num_attention_heads} heads`);
  if (!['default', 'full'].includes(c.vision_feature_select_strategy)) {
    throw new Error(`vision_feature_select_strategy "${c.vision_feature_select_strategy}" must be "default" or "full"`);
  }
  return tower;
}

/** Adds the vision tower on `pixelValues` [B, C, S, S]; returns the selected features [B, tokens, vision_hidden]. */
export function addVisionTower(ctx: BuildContext, c: LlavaConfig, pixelValues: string): string {
  const tower = checkVisionConfig(c);
  const x = tower.addEncoder(ctx, c, pixelValues, visionLayersUsed(c));
  if (c.vision_feature_select_strategy === 'full') return x;
  const end = tower.tokens(c.vision_config);
  return ctx.g.op('Slice', [x, ctx.g.constInt64([1]), ctx.g.constInt64([end]), ctx.g.constInt64([1])], {}, { name: 'DropFirstToken' });
}

export interface VisionEncoderOptions {
  /** transformers-js layout: the projector runs inside, so image_features are text-width embeddings. */
  withProjector: boolean;
  /** The tower's encoder-layer Linear weights as MatMulNBits (the embeddings and the projector stay float32). */
  quant?: QuantOptions;
}

/** vision_encoder: pixel_values [B, C, S, S] → image_features [B, tokens, width] (width: text hidden with projector, else vision hidden). */
export function buildVisionEncoderGraph(weights: WeightSource, c: LlavaConfig, opts: VisionEncoderOptions): Graph {
  const g = new Graph('vision_encoder');
  const v = c.vision_config;
  const ctx: BuildContext = { g, weights, quant: opts.quant };
  const pixels = g.input(VISION_IO.pixelValues, 'float32', ['batch_size', v.num_channels ?? 3, v.image_size, v.image_size]);
  let features = addVisionTower(ctx, c, pixels);
  if (opts.withProjector) features = addProjector(ctx, c, features);
  const width = opts.withProjector ? c.text_config.hidden_size : v.hidden_size;
  g.output(features, 'float32', ['batch_size', visionTokenCount(c), width], VISION_IO.imageFeatures);
  return g;
}
