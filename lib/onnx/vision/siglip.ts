// The SigLIP vision tower (transformers models/siglip/modeling_siglip.py SiglipVisionTransformer), as
// llava-interleave / llava-onevision / nanoLLaVA use it: patch conv WITH bias and "valid" padding (384/14 gives
// 27×27 = 729 patches, the last 6 pixels of each side unused), learned position embeddings for the patches only (no
// CLS), no pre-norm, pre-LN encoder layers with gelu_pytorch_tanh. post_layernorm is applied to last_hidden_state
// only; SiglipEncoder's hidden_states are the layer outputs before it, and LLaVA reads hidden_states, so it is never
// built. The attention-pooling head (vision_use_head) is unused too.
import type { LlavaConfig, VisionConfig } from '../../model/config';
import { BuildContext, weightInitializer } from '../blocks';
import { VISION_PREFIX, WeightShapes } from '../weight-names';
import { imageProcessorJson, patchGrid, VisionTower } from './tower';
import { checkActivation, patchTokens, vitEncoder, vitEncoderShapes } from './vit-layer';

const E = `${VISION_PREFIX}.embeddings`;

export const SIGLIP_VISION: VisionTower = {
  modelType: 'siglip_vision_model',

  tokens: (v) => patchGrid(v) ** 2,

  check: checkActivation,

  // llava-hf/llava-interleave-qwen-0.5b-hf's preprocessor_config.json: a bicubic squash to height × width, mean/std 0.5.
  imageProcessor: (v) => imageProcessorJson('SiglipImageProcessor', { size: { height: v.image_size, width: v.image_size } }, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),

  weightShapes(v: VisionConfig, layers: number): WeightShapes {
    const d = v.hidden_size;
    const out: WeightShapes = [
      [`${E}.patch_embedding.weight`, [d, v.num_channels ?? 3, v.patch_size, v.patch_size]],
      [`${E}.patch_embedding.bias`, [d]],
      [`${E}.position_embedding.weight`, [patchGrid(v) ** 2, d]],
    ];
    return vitEncoderShapes(out, v, layers);
  },

  addEncoder(ctx: BuildContext, c: LlavaConfig, pixelValues: string, layers: number): string {
    const v = c.vision_config;
    const positions = weightInitializer(ctx, `${E}.position_embedding.weight`, [patchGrid(v) ** 2, v.hidden_size]);
    const x = ctx.g.op('Add', [patchTokens(ctx, v, pixelValues, true), positions], {}, { name: `${E}/AddPositions` });
    return vitEncoder(ctx, v, x, layers);
  },
};
