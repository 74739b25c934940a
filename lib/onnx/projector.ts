// The LLaVA multimodal projector: 'linear' (v1, one Linear) or 'mlp2x_gelu' (v1.5, Linear → exact erf GELU → Linear).
import { LlavaConfig, projectorType } from '../model/config';
import { BuildContext, linear } from './blocks';
import { PROJECTOR_IO } from '../model/graph-io';
import { Graph } from './graph';
import { linearShapes, PROJECTOR_PREFIX, WeightShapes } from './weight-names';
import type { WeightSource } from './weights';

/** Adds the projector on `features` [B, tokens, vision_hidden]; returns [B, tokens, text_hidden]. */
export function addProjector(ctx: BuildContext, c: LlavaConfig, features: string): string {
  const bias = c.multimodal_projector_bias ?? true;
  const dv = c.vision_config.hidden_size;
  const h = c.text_config.hidden_size;
  const y = linear(ctx, features, `${PROJECTOR_PREFIX}.linear_1`, dv, h, { bias });
  if (projectorType(c) === 'linear') return y;
  const act = ctx.g.op('Gelu', [y], { approximate: 'none' }, { name: `${PROJECTOR_PREFIX}/Gelu` });
  return linear(ctx, act, `${PROJECTOR_PREFIX}.linear_2`, h, h, { bias });
}

/** multi_modal_projector (split layout): image_features [B, tokens, vision_hidden] → image_embeds [B, tokens, text_hidden]. */
export function buildProjectorGraph(weights: WeightSource, c: LlavaConfig): Graph {
  const g = new Graph('multi_modal_projector');
  const features = g.input(PROJECTOR_IO.imageFeatures, 'float32', ['batch_size', 'num_image_tokens', c.vision_config.hidden_size]);
  g.output(addProjector({ g, weights }, c, features), 'float32', ['batch_size', 'num_image_tokens', c.text_config.hidden_size], PROJECTOR_IO.imageEmbeds);
  return g;
}

export function projectorWeightShapes(c: LlavaConfig): WeightShapes {
  const out: WeightShapes = [];
  const bias = c.multimodal_projector_bias ?? true;
  const h = c.text_config.hidden_size;
  linearShapes(out, `${PROJECTOR_PREFIX}.linear_1`, c.vision_config.hidden_size, h, bias);
  if (projectorType(c) === 'mlp2x_gelu') linearShapes(out, `${PROJECTOR_PREFIX}.linear_2`, h, h, bias);
  return out;
}
