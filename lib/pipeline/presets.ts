// Presets: the settings a known LLaVA recipe uses at run time (image preprocessing, prompt, tokenization style,
// generation). A preset only sets defaults; mergePreset() overrides any of them. The vision feature choice
// (vision_feature_layer, vision_feature_select_strategy) is not a preset's: it is in the folder's config.json and
// built into its vision_encoder graph (lib/onnx/vision).

import { CLIP_MEAN, CLIP_STD } from '../model/config';
import type { GenerationOptions, PreprocessOptions } from './types';
import type { TemplateName } from './templates';
import type { TokenizationStyle } from './tokens';

/** Where the prompt text comes from. */
export type PromptSource = { kind: 'template'; template: TemplateName } | { kind: 'chat-template' } | { kind: 'custom'; template: string };

export interface LlavaPreset {
  name: string;
  description: string;
  /** What the preset fixes of the preprocessing; the rest follows the folder's preprocessor_config.json. */
  preprocess: Partial<PreprocessOptions>;
  prompt: PromptSource;
  /** Wrap the image as <im_start><image><im_end> (LLaVA v1). */
  imStartEnd: boolean;
  tokenization: TokenizationStyle;
  generation: GenerationOptions;
}

export type PresetOverrides = {
  description?: string;
  preprocess?: Partial<PreprocessOptions>;
  prompt?: PromptSource;
  imStartEnd?: boolean;
  tokenization?: TokenizationStyle;
  generation?: Partial<GenerationOptions>;
};

function squash(size: number): Partial<PreprocessOptions> {
  return { mode: 'squash', size, mean: [...CLIP_MEAN], std: [...CLIP_STD] };
}

/**
 * open-mmlab/mmpretrain configs/llava/*.py: bicubic squash, no BOS. (Their last ViT layer without final norm, CLS
 * dropped, is the model's own: config.json's vision_feature_layer −1, 'default', which the graphs are built with.)
 */
const MMPRETRAIN_BASE = {
  tokenization: 'mmpretrain',
} as const;

const PRESET_LIST: LlavaPreset[] = [
  {
    name: 'llava-7b-v1_caption',
    description: 'mmpretrain llava-7b-v1_caption: 224 px squash, one-Linear projector, <im_start><image><im_end>, greedy 50 tokens',
    ...MMPRETRAIN_BASE,
    preprocess: squash(224),
    prompt: { kind: 'template', template: 'mmpretrain_v1_caption' },
    imStartEnd: true,
    generation: { maxNewTokens: 50 },
  },
  {
    name: 'llava-7b-v1.5_caption',
    description: 'mmpretrain llava-7b-v1.5_caption: 336 px squash, beam search (3 beams, length penalty -1), 50 tokens',
    ...MMPRETRAIN_BASE,
    preprocess: squash(336),
    prompt: { kind: 'template', template: 'mmpretrain_v1.5_caption' },
    imStartEnd: false,
    generation: { maxNewTokens: 50, numBeams: 3, lengthPenalty: -1.0 },
  },
  {
    name: 'llava-7b-v1.5_vqa',
    description: 'mmpretrain llava-7b-v1.5_vqa: 336 px squash, question prompt, greedy 100 tokens',
    ...MMPRETRAIN_BASE,
    preprocess: squash(336),
    prompt: { kind: 'template', template: 'mmpretrain_v1.5_vqa' },
    imStartEnd: false,
    generation: { maxNewTokens: 100 },
  },
  {
    name: 'llava-1.5-hf',
    description: "llava-hf models: the folder's own image processor, penultimate layer, the model's chat template, greedy",
    preprocess: {},
    prompt: { kind: 'chat-template' },
    imStartEnd: false,
    tokenization: 'hf',
    generation: { maxNewTokens: 200 },
  },
];

/** A preset with its preprocessing complete (the folder's processor under the preset's own choices). */
export type ResolvedPreset = Omit<LlavaPreset, 'preprocess'> & { preprocess: PreprocessOptions };

export const PRESET_NAMES: readonly string[] = PRESET_LIST.map((p) => p.name);

/** A copy of the named preset (callers may change it freely). */
export function getPreset(name: string): LlavaPreset {
  const preset = PRESET_LIST.find((p) => p.name === name);
  if (!preset) throw new Error(`unknown preset "${name}"; known: ${PRESET_NAMES.join(', ')}`);
  return mergePreset(preset, {});
}

/**
 * The preset with overrides applied: preprocess and generation merge field by field, every other setting is
 * replaced whole. Overrides that are undefined leave the preset's value. Nothing is shared with the inputs.
 */
export function mergePreset(preset: LlavaPreset, overrides: PresetOverrides): LlavaPreset {
  const defined = <T extends object>(o: T | undefined): Partial<T> =>
    Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
  const { preprocess, generation, ...rest } = overrides;
  const merged: LlavaPreset = {
    ...preset,
    ...defined(rest),
    preprocess: { ...preset.preprocess, ...defined(preprocess) },
    generation: { ...preset.generation, ...defined(generation) },
  };
  return structuredClone(merged);
}
