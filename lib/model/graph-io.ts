// The model folder's graph contract: the ONNX graphs' input and output names (transformers.js's LLaVA layout,
// plus this project's split multi_modal_projector). The builder writes them and the pipeline feeds and reads them.
/** image_sizes: (height, width) of the original image, an input some exports declare (LLaVA-NeXT/OneVision style). */
export const VISION_IO = { pixelValues: 'pixel_values', imageSizes: 'image_sizes', imageFeatures: 'image_features' } as const;
export const PROJECTOR_IO = { imageFeatures: 'image_features', imageEmbeds: 'image_embeds' } as const;
export const EMBED_IO = { inputIds: 'input_ids', inputsEmbeds: 'inputs_embeds' } as const;

export const DECODER_IO = {
  inputsEmbeds: 'inputs_embeds',
  attentionMask: 'attention_mask',
  positionIds: 'position_ids',
  /** Optional inputs of public exports: optimum's merged decoders, transformers' num_logits_to_keep. */
  useCacheBranch: 'use_cache_branch',
  numLogitsToKeep: 'num_logits_to_keep',
  logits: 'logits',
  pastPrefix: 'past_key_values.',
  pastKey: (i: number) => `past_key_values.${i}.key`,
  pastValue: (i: number) => `past_key_values.${i}.value`,
  presentKey: (i: number) => `present.${i}.key`,
  presentValue: (i: number) => `present.${i}.value`,
} as const;
