// The contract between the ONNX graphs and the code that runs them: the names of their inputs and outputs (what
// the builder writes, the pipeline feeds and reads, and config.json records) and the decoder's KV-cache geometry.
// The names are the transformers.js / Optimum layout's, so exported folders and ours load the same way.

export const GRAPH_IO = {
  /** vision_encoder input. */
  pixelValues: 'pixel_values',
  /** vision_encoder output, multi_modal_projector input. */
  imageFeatures: 'image_features',
  /** multi_modal_projector output. */
  imageEmbeds: 'image_embeds',
  /** embed_tokens input. */
  inputIds: 'input_ids',
  /** embed_tokens output, decoder input. */
  inputsEmbeds: 'inputs_embeds',
  attentionMask: 'attention_mask',
  positionIds: 'position_ids',
  /** Optional decoder input of some exports: how many last positions get logits. */
  numLogitsToKeep: 'num_logits_to_keep',
  /** Decoder input of merged exports with an If node: whether the past is used. */
  useCacheBranch: 'use_cache_branch',
  logits: 'logits',
  /** The decoder's past key/value inputs all start with this. */
  pastPrefix: 'past_key_values.',
  past: (layer: number, kv: 'key' | 'value') => `past_key_values.${layer}.${kv}`,
  present: (layer: number, kv: 'key' | 'value') => `present.${layer}.${kv}`,
} as const;

/** The decoder's KV-cache geometry, from config.json. */
export interface KvShape {
  layers: number;
  kvHeads: number;
  headDim: number;
  hiddenSize: number;
  vocabSize: number;
}
