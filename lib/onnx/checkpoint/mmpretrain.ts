// Maps open-mmlab/mmpretrain LLaVA checkpoints to llava-hf names and derives their LlavaConfig.
//
// What mmpretrain's code does (open-mmlab/mmpretrain @ee7f2e8):
// - configs/llava/llava-7b-v1_caption.py, llava-7b-v1.5_{caption,vqa}.py: the vision encoder is
//   VisionTransformer(arch='l', patch_size=14, img_size=224 | 336, pre_norm=True, LN eps 1e-5, QuickGELU,
//   final_norm=False, out_type='raw'), its weights from a separate CLIP .pth (vision_encoder.pretrained,
//   loaded with revise_keys ^backbone. → ''); mm_proj_depth 1 (v1) or 2 (v1.5); use_im_start_end True (v1);
//   lang_encoder AutoModelForCausalLM('huggyllama/llama-7b'), whose weights come from the LLaVA .pth.
// - mmpretrain/models/multimodal/llava/modules.py (LlavaLlamaForCausalLM): the model holds vision_tower and
//   lang_encoder; the projector is added as lang_encoder.model.mm_projector (nn.Linear for depth 1,
//   Sequential(Linear, GELU, Linear) for depth 2 → indices 0 and 2); features are vision_tower(images)[-1][:, 1:],
//   the last layer's raw output (no final norm), CLS dropped; the image placeholder id is -200.
// - mmpretrain/models/multimodal/llava/llava.py (Llava): self.model = LlavaLlamaForCausalLM, so full-model
//   keys start with model.vision_tower. / model.lang_encoder.; <im_start>/<im_end> are added to the tokenizer
//   and lang_encoder.resize_token_embeddings(len(tokenizer)) follows.
// - tools/model_converters/llava-delta2mmpre.py: LLaVA .pth keys are 'model.lang_encoder.' + the original
//   LLaVA HF keys (model.embed_tokens, model.layers.N.*, model.norm, model.mm_projector*, lm_head), without
//   rotary_emb.inv_freq.
// - mmpretrain/models/backbones/vision_transformer.py + models/utils/attention.py (MultiheadAttention):
//   patch_embed.projection (no bias with pre_norm), cls_token [1,1,D], pos_embed [1,L,D], pre_norm,
//   layers.N.{ln1, attn.qkv, attn.proj, ln2, ffn.layers.0.0, ffn.layers.1}, final ln1; qkv is one
//   Linear(D, 3D) reshaped (B, N, 3, heads, head_dim), so its output rows are [q; k; v].
// - tools/model_converters/openai-clip_to_mmpretrain-clip.py (keeps the 'visual.' prefix, ln_post → ln1) and
//   clip_to_mmpretrain.py (timm CLIP, adds 'backbone.', norm → ln1): the CLIP .pth key spellings.
import { LlavaConfig, RECORD_KEY, TextConfig, VisionConfig } from '../../model/config';
import { WeightSource, WeightTensor } from '../weights';
import { TensorTable, fmtShape, renamed, rowSlice } from './source';
import { addedTokenId, tokenizerFilesIn } from './tokenizer-files';
import { openWeightFile } from './weight-file';

export type MmpretrainRecipe = 'v1' | 'v1.5';

interface RecipeFacts {
  preset: string;
  imageSize: number;
  projectorDepth: 1 | 2;
  imStartEnd: boolean;
}

const RECIPES: Record<MmpretrainRecipe, RecipeFacts> = {
  v1: { preset: 'llava-7b-v1_caption', imageSize: 224, projectorDepth: 1, imStartEnd: true },
  'v1.5': { preset: 'llava-7b-v1.5_caption', imageSize: 336, projectorDepth: 2, imStartEnd: false },
};

/** Preset names (lib/pipeline/presets.ts) → the mmpretrain recipe they belong to. */
const PRESET_RECIPES: Record<string, MmpretrainRecipe> = {
  v1: 'v1',
  'v1.5': 'v1.5',
  'llava-7b-v1_caption': 'v1',
  'llava-7b-v1.5_caption': 'v1.5',
  'llava-7b-v1.5_vqa': 'v1.5',
};

/** The key prefixes a CLIP VisionTransformer's weights carry in the checkpoints mmpretrain uses. */
const VISION_PREFIXES = ['model.vision_tower.', 'backbone.', 'visual.', 'visual_encoder.', 'vision_encoder.', ''];
const LANG_PREFIX = 'model.lang_encoder.';
const PROJECTOR_PREFIX = `${LANG_PREFIX}model.mm_projector.`;

/** mmpretrain's image placeholder id (modules.py im_token_index); features are spliced at its slot. */
export const MMPRETRAIN_IMAGE_TOKEN_INDEX = -200;
/** CLIP ViT heads are 64 wide; LLaMA heads are 128 wide. Used when the caller does not give head counts. */
const CLIP_HEAD_DIM = 64;
const LLAMA_HEAD_DIM = 128;

export interface MmpretrainOptions {
  /** The LLaVA checkpoint (llava-7b-v1*_liuhaotian_*.pth): language model + projector (+ vision tower if saved). */
  llava: string | WeightSource;
  /** The CLIP ViT checkpoint the config names as vision_encoder.pretrained (vit-large-p14_clip-openai-pre_*.pth). */
  vision?: string | WeightSource;
  /** 'v1' | 'v1.5', or a preset name such as 'llava-7b-v1.5_caption'. */
  preset: string;
  /**
   * A folder with the tokenizer the config names (liuhaotian/llava-v1.5-7b, or LLaVA-Lightning-7B-delta-v1-1 for v1);
   * its files are returned as tokenizerFiles, and its <im_start>/<im_end> ids are used when it defines them.
   */
  tokenizer?: string;
  /** Attention heads, when they are not hidden/64 (vision) or hidden/128 (text), e.g. for tiny test models. */
  visionHeads?: number;
  textHeads?: number;
}

export interface MmpretrainCheckpoint {
  config: LlavaConfig;
  /** llava-hf names: vision_tower.vision_model.*, multi_modal_projector.linear_1/2.*, language_model.*. */
  weights: WeightSource;
  /** Checkpoint tensors with no place in that layout (e.g. CLIP's projection head, the LLaVA delta's own vision tower). */
  ignored: string[];
  /**
   * v1 only: ids of <im_start>/<im_end>. Llava.__init__ adds them to the tokenizer when it lacks them, so they are
   * appended last and resize_token_embeddings makes them the last two embedding rows; a given tokenizer's ids win.
   */
  imStartEnd?: { startId: number; endId: number };
  /** Files of `options.tokenizer` (empty without it). */
  tokenizerFiles: string[];
}

export function openMmpretrainCheckpoint(options: MmpretrainOptions): MmpretrainCheckpoint {
  const recipeName = PRESET_RECIPES[options.preset];
  if (!recipeName) {
    throw new Error(`unknown mmpretrain LLaVA preset '${options.preset}'; known: ${Object.keys(PRESET_RECIPES).join(', ')}`);
  }
  const recipe = RECIPES[recipeName];
  const open = (s: string | WeightSource) => (typeof s === 'string' ? openWeightFile(s) : s);
  const { weights, ignored } = mapMmpretrainWeights(open(options.llava), options.vision ? open(options.vision) : undefined);
  const vision = deriveVisionConfig(weights, options.visionHeads);
  if (vision.image_size !== recipe.imageSize) {
    throw new Error(
      `the vision checkpoint's position embeddings are for ${vision.image_size} px images, but preset '${options.preset}' ` +
        `uses ${recipe.imageSize} px (mmpretrain would resize them bicubically; use the CLIP checkpoint the preset names)`,
    );
  }
  const text = deriveTextConfig(weights, options.textHeads);
  const depth = weights.get('multi_modal_projector.linear_2.weight') ? 2 : 1;
  if (depth !== recipe.projectorDepth) {
    throw new Error(
      `preset '${options.preset}' uses a ${recipe.projectorDepth}-layer projector (mm_proj_depth), ` + `but the checkpoint's mm_projector has ${depth}`,
    );
  }
  checkShape(weights, 'multi_modal_projector.linear_1.weight', [text.hidden_size, vision.hidden_size]);
  const tokenizerFiles = options.tokenizer ? tokenizerFilesIn(options.tokenizer) : [];
  if (options.tokenizer && tokenizerFiles.length === 0) throw new Error(`${options.tokenizer} holds no tokenizer files`);
  const imStartEnd = recipe.imStartEnd ? imStartEndIds(tokenizerFiles, text.vocab_size) : undefined;
  const config: LlavaConfig = {
    model_type: 'llava',
    architectures: ['LlavaForConditionalGeneration'],
    image_token_index: MMPRETRAIN_IMAGE_TOKEN_INDEX,
    vision_feature_layer: -1,
    vision_feature_select_strategy: 'default',
    projector_hidden_act: depth === 1 ? 'linear' : 'gelu',
    projector_type: depth === 1 ? 'linear' : 'mlp2x_gelu',
    multimodal_projector_bias: weights.get('multi_modal_projector.linear_1.bias') !== undefined,
    image_seq_length: (vision.image_size / vision.patch_size) ** 2,
    vision_config: vision,
    text_config: text,
    [RECORD_KEY]: {
      source: 'mmpretrain',
      preset: recipe.preset,
      ...(imStartEnd ? { im_start_token_id: imStartEnd.startId, im_end_token_id: imStartEnd.endId } : {}),
    },
  };
  return { config, weights, ignored, tokenizerFiles, ...(imStartEnd ? { imStartEnd } : {}) };
}

function imStartEndIds(tokenizerFiles: string[], vocab: number): { startId: number; endId: number } {
  const startId = addedTokenId(tokenizerFiles, '<im_start>') ?? vocab - 2;
  const endId = addedTokenId(tokenizerFiles, '<im_end>') ?? vocab - 1;
  for (const id of [startId, endId]) {
    if (id < 0 || id >= vocab) throw new Error(`the tokenizer's <im_start>/<im_end> id ${id} is outside the ${vocab}-row embeddings`);
  }
  return { startId, endId };
}

/**
 * The renaming itself: LLaVA .pth (+ CLIP .pth) → llava-hf names. The vision tower comes from the LLaVA
 * checkpoint's model.vision_tower.* when it has one (a full-model save, which mmpretrain loads over the CLIP
 * weights), otherwise from `vision`.
 */
export function mapMmpretrainWeights(llava: WeightSource, vision?: WeightSource): { weights: WeightSource; ignored: string[] } {
  const out = new TensorTable();
  const ignored: string[] = [];
  const llavaHasVision = llava.get('model.vision_tower.patch_embed.projection.weight') !== undefined;
  for (const name of llava.names()) {
    const tensor = llava.get(name)!;
    if (name.startsWith('model.vision_tower.') && llavaHasVision) continue; // mapped below
    const target = languageName(name);
    if (target === undefined) ignored.push(name);
    else out.add(renamed(tensor, target));
  }
  const visionSource = llavaHasVision ? llava : vision;
  if (!visionSource) {
    throw new Error(
      'no vision tower: the LLaVA checkpoint has no model.vision_tower.* weights, so pass the CLIP ViT checkpoint ' +
        "(the config's vision_encoder.pretrained) as `vision`",
    );
  }
  if (llavaHasVision && vision) ignored.push(...vision.names());
  addVisionTower(visionSource, out, ignored, llavaHasVision ? 'model.vision_tower.' : undefined);
  if (!out.get('language_model.model.embed_tokens.weight')) {
    throw new Error(`the LLaVA checkpoint has no ${LANG_PREFIX}model.embed_tokens.weight; is it an mmpretrain LLaVA checkpoint?`);
  }
  if (!out.get('multi_modal_projector.linear_1.weight')) {
    throw new Error(`the LLaVA checkpoint has no projector (${PROJECTOR_PREFIX}*)`);
  }
  return { weights: out, ignored };
}

/** model.lang_encoder.* → language_model.* / multi_modal_projector.*; undefined for keys with no place. */
function languageName(name: string): string | undefined {
  if (name.startsWith(PROJECTOR_PREFIX)) {
    const rest = name.slice(PROJECTOR_PREFIX.length);
    const m = /^(?:(0|2)\.)?(weight|bias)$/.exec(rest);
    if (!m) throw new Error(`unsupported projector tensor '${name}' (only mm_proj_depth 1 or 2 exist in mmpretrain's LLaVA)`);
    return `multi_modal_projector.linear_${m[1] === '2' ? 2 : 1}.${m[2]}`;
  }
  if (!name.startsWith(LANG_PREFIX) || name.endsWith('rotary_emb.inv_freq')) return undefined;
  const rest = name.slice(LANG_PREFIX.length);
  // The LLaVA delta may carry its own copy of the CLIP tower; mmpretrain never reads it.
  if (rest.startsWith('model.vision_tower.')) return undefined;
  if (rest.startsWith('model.') || rest.startsWith('lm_head.')) return `language_model.${rest}`;
  return undefined;
}

const VISION_OUT = 'vision_tower.vision_model';

function addVisionTower(source: WeightSource, out: TensorTable, ignored: string[], knownPrefix?: string): void {
  const prefix = knownPrefix ?? VISION_PREFIXES.find((p) => source.get(`${p}patch_embed.projection.weight`) !== undefined);
  if (prefix === undefined) {
    throw new Error(
      'the vision checkpoint is not an mmpretrain CLIP VisionTransformer: no patch_embed.projection.weight ' +
        `(looked under ${VISION_PREFIXES.map((p) => `'${p}'`).join(', ')})`,
    );
  }
  const hidden = source.get(`${prefix}patch_embed.projection.weight`)!.shape[0];
  for (const name of source.names()) {
    if (!name.startsWith(prefix)) {
      // A separate CLIP file's other tensors are unused; in the LLaVA file they are the language model.
      if (knownPrefix === undefined) ignored.push(name);
      continue;
    }
    const tensor = source.get(name)!;
    const mapped = visionTensors(name.slice(prefix.length), tensor, hidden);
    if (mapped.length === 0) ignored.push(name);
    for (const t of mapped) out.add(t);
  }
}

/** One mmpretrain ViT tensor → its llava-hf tensor(s); [] for tensors LLaVA has no use for. */
function visionTensors(key: string, t: WeightTensor, hidden: number): WeightTensor[] {
  const at = (suffix: string, shape?: number[]) => [renamed(t, `${VISION_OUT}.${suffix}`, shape)];
  if (key === 'patch_embed.projection.weight') return at('embeddings.patch_embedding.weight');
  if (key === 'patch_embed.projection.bias') {
    throw new Error('the vision checkpoint has a patch-embedding bias; CLIP (pre_norm=True) has none, so it is not a CLIP ViT');
  }
  if (key === 'cls_token') return at('embeddings.class_embedding', [t.shape[t.shape.length - 1]]);
  if (key === 'pos_embed') return at('embeddings.position_embedding.weight', t.shape.slice(-2));
  let m = /^pre_norm\.(weight|bias)$/.exec(key);
  if (m) return at(`pre_layrnorm.${m[1]}`);
  // The final norm: mmpretrain's LLaVA builds none (final_norm=False); HF keeps it as post_layernorm, used only on CLS.
  m = /^ln1\.(weight|bias)$/.exec(key);
  if (m) return at(`post_layernorm.${m[1]}`);
  m = /^layers\.(\d+)\.(.+)$/.exec(key);
  if (!m) return [];
  const layer = `encoder.layers.${m[1]}`;
  const part = m[2];
  const simple: Array<[RegExp, string]> = [
    [/^ln1\.(weight|bias)$/, 'layer_norm1'],
    [/^ln2\.(weight|bias)$/, 'layer_norm2'],
    [/^attn\.proj\.(weight|bias)$/, 'self_attn.out_proj'],
    [/^ffn\.layers\.0\.0\.(weight|bias)$/, 'mlp.fc1'],
    [/^ffn\.layers\.1\.(weight|bias)$/, 'mlp.fc2'],
  ];
  for (const [pattern, target] of simple) {
    const p = pattern.exec(part);
    if (p) return at(`${layer}.${target}.${p[1]}`);
  }
  const qkv = /^attn\.qkv\.(weight|bias)$/.exec(part);
  if (qkv) {
    if (t.shape[0] !== 3 * hidden) throw new Error(`${key} has shape ${fmtShape(t.shape)}; expected ${3 * hidden} rows (q, k, v)`);
    return ['q_proj', 'k_proj', 'v_proj'].map((proj, i) => rowSlice(t, `${VISION_OUT}.${layer}.self_attn.${proj}.${qkv[1]}`, i * hidden, hidden));
  }
  // Anything else inside a layer (e.g. layer-scale gammas) would change the maths; refuse rather than drop it.
  throw new Error(`unexpected vision tensor '${key}': not part of a CLIP ViT layer`);
}

function deriveVisionConfig(w: WeightSource, heads?: number): VisionConfig {
  const [hidden, channels, patch] = w.get(`${VISION_OUT}.embeddings.patch_embedding.weight`)!.shape;
  const pos = w.get(`${VISION_OUT}.embeddings.position_embedding.weight`);
  if (!pos) throw new Error('the vision checkpoint has no pos_embed');
  const grid = Math.round(Math.sqrt(pos.shape[0] - 1));
  if (grid * grid + 1 !== pos.shape[0]) throw new Error(`pos_embed has ${pos.shape[0]} rows, not a square grid plus CLS`);
  const fc1 = w.get(`${VISION_OUT}.encoder.layers.0.mlp.fc1.weight`);
  if (!fc1) throw new Error('the vision checkpoint has no layers.0.ffn.layers.0.0.weight');
  return {
    model_type: 'clip_vision_model',
    hidden_size: hidden,
    intermediate_size: fc1.shape[0],
    num_hidden_layers: countLayers(w, `${VISION_OUT}.encoder.layers.`),
    num_attention_heads: headCount(hidden, heads, CLIP_HEAD_DIM, 'vision'),
    image_size: grid * patch,
    patch_size: patch,
    num_channels: channels,
    hidden_act: 'quick_gelu', // layer_cfgs act_cfg mmpretrain.QuickGELU
    layer_norm_eps: 1e-5, // norm_cfg LN eps=1e-5
  };
}

function deriveTextConfig(w: WeightSource, heads?: number): TextConfig {
  const [vocab, hidden] = w.get('language_model.model.embed_tokens.weight')!.shape;
  const gate = w.get('language_model.model.layers.0.mlp.gate_proj.weight');
  const kProj = w.get('language_model.model.layers.0.self_attn.k_proj.weight');
  if (!gate || !kProj) throw new Error('the LLaVA checkpoint has no LLaMA layer 0 (mlp.gate_proj / self_attn.k_proj)');
  const numHeads = headCount(hidden, heads, LLAMA_HEAD_DIM, 'text');
  const headDim = hidden / numHeads;
  return {
    model_type: 'llama',
    vocab_size: vocab,
    hidden_size: hidden,
    intermediate_size: gate.shape[0],
    num_hidden_layers: countLayers(w, 'language_model.model.layers.'),
    num_attention_heads: numHeads,
    num_key_value_heads: kProj.shape[0] / headDim,
    // lang_encoder is built from huggyllama/llama-7b's config.json (configs/llava/*.py).
    max_position_embeddings: 2048,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    hidden_act: 'silu',
    tie_word_embeddings: w.get('language_model.lm_head.weight') === undefined,
    bos_token_id: 1,
    eos_token_id: 2,
  };
}

function headCount(hidden: number, given: number | undefined, headDim: number, which: string): number {
  const heads = given ?? hidden / headDim;
  if (!Number.isInteger(heads) || heads <= 0 || hidden % heads !== 0) {
    throw new Error(`cannot split ${which} hidden size ${hidden} into ${given ?? `${headDim}-wide`} heads; pass ${which}Heads`);
  }
  return heads;
}

function countLayers(w: WeightSource, prefix: string): number {
  const indices = new Set<number>();
  for (const name of w.names()) {
    if (name.startsWith(prefix)) indices.add(Number(name.slice(prefix.length).split('.')[0]));
  }
  const count = indices.size;
  for (let i = 0; i < count; i++) if (!indices.has(i)) throw new Error(`layer ${i} of ${prefix}* is missing`);
  return count;
}

function checkShape(w: WeightSource, name: string, shape: number[]): void {
  const t = w.get(name)!;
  if (fmtShape(t.shape) !== fmtShape(shape)) {
    throw new Error(`${name} is ${fmtShape(t.shape)}, but the vision and text widths imply ${fmtShape(shape)}`);
  }
}
