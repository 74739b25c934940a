// The CLIP ViT vision tower (transformers models/clip/modeling_clip.py CLIPVisionTransformer), as LLaVA-1.5 uses
// it: bias-free patch conv, class embedding, position embeddings for CLS + patches, pre_layrnorm, then pre-LN
// encoder layers with quick_gelu. post_layernorm only feeds the pooled CLS output, which LLaVA never reads.
import type { LlavaConfig, VisionConfig } from '../../model/config';
import { CLIP_MEAN, CLIP_STD } from '../../model/config';
import { BuildContext, layerNorm, weightInitializer } from '../blocks';
import { VISION_PREFIX, WeightShapes } from '../weight-names';
import { imageProcessorJson, patchGrid, VisionTower } from './tower';
import { checkActivation, patchTokens, vitEncoder, vitEncoderShapes } from './vit-layer';

const E = `${VISION_PREFIX}.embeddings`;

export const CLIP_VISION: VisionTower = {
  modelType: 'clip_vision_model',
  tokens: (v) => patchGrid(v) ** 2 + 1,

  check: checkActivation,

  // llava-hf/llava-1.5-7b-hf's preprocessor_config.json: shortest edge, centre crop, CLIP statistics.
  imageProcessor: (v) =>
    imageProcessorJson(
      'CLIPImageProcessor',
      { size: { shortest_edge: v.image_size }, do_center_crop: true, crop_size: { height: v.image_size, width: v.image_size } },
      [...CLIP_MEAN],
      [...CLIP_STD],
    ),

  weightShapes(v: VisionConfig, layers: number): WeightShapes {
    const d = v.hidden_size;
    const out: WeightShapes = [
      [`${E}.patch_embedding.weight`, [d, v.num_channels ?? 3, v.patch_size, v.patch_size]],
      [`${E}.class_embedding`, [d]],
      [`${E}.position_embedding.weight`, [patchGrid(v) ** 2 + 1, d]],
      [`${VISION_PREFIX}.pre_layrnorm.weight`, [d]],
      [`${VISION_PREFIX}.pre_layrnorm.bias`, [d]],
    ];
    return vitEncoderShapes(out, v, layers);
  },

  addEncoder(ctx: BuildContext, c: LlavaConfig, pixelValues: string, layers: number): string {
    const { g } = ctx;
    const v = c.vision_config;
    const d = v.hidden_size;
    const batch = g.op('Slice', [g.op('Shape', [pixelValues]), g.constInt64([0]), g.constInt64([1])]);
    const clsShape = g.op('Concat', [batch, g.constInt64([1, d])], { axis: 0 });
    const cls = g.op('Expand', [weightInitializer(ctx, `${E}.class_embedding`, [d]), clsShape], {}, { name: `${E}/ClassToken` });
    const tokens = g.op('Concat', [cls, patchTokens(ctx, v, pixelValues, false)], { axis: 1 });
    let x = g.op('Add', [tokens, weightInitializer(ctx, `${E}.position_embedding.weight`, [patchGrid(v) ** 2 + 1, d])], {}, { name: `${E}/AddPositions` });
    x = layerNorm(ctx, x, `${VISION_PREFIX}.pre_layrnorm`, d, v.layer_norm_eps);
    return vitEncoder(ctx, v, x, layers);
  },
};
