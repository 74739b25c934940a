// Model folders shaped like public LLaVA-family repos, made at test time: their config.json,
// preprocessor_config.json, processor_config.json and chat template are the public files (test/support/public-configs.ts,
// sources cited there) at tiny widths; the graphs come from our builder with random weights; the tokenizer is our
// tiny one of the same family (SentencePiece-style LLaMA or byte-level BPE Qwen2 with ChatML), so vocab_size and the
// special ids are the tiny tokenizer's rather than the published ones.
import * as fs from 'fs';
import * as path from 'path';
import type { LlavaConfig } from '../../lib/model/config';
import { DECODER_IO } from '../../lib/model/graph-io';
import { completeLlavaConfig } from '../../lib/model/hf-config';
import { llamaTinyTokenizer, qwen2TinyTokenizer, TinyTokenizer } from '../../lib/model/tiny-tokenizer';
import { buildDecoderGraph } from '../../lib/onnx/decoder';
import { randomWeights } from '../../lib/onnx/random-weights';
import type { WeightSource } from '../../lib/onnx/weights';
import { writeModelFolder } from '../../lib/onnx/write-model';
import { BAKLLAVA, LLAVA_15_7B, LLAVA_INTERLEAVE_QWEN_05B, LLAVA_ONEVISION_QWEN2_05B, NANOLLAVA, TINY_RANDOM_LLAVA, tiny } from './public-configs';

export const FIXTURE_NAMES = [
  'tiny-random-LlavaForConditionalGeneration',
  'llava-1.5-7b-hf',
  'bakLlava-v1-hf',
  'llava-interleave-qwen-0.5b-hf',
  'llava-onevision-qwen2-0.5b-ov-hf',
  'nanoLLaVA',
] as const;
export type FixtureName = (typeof FIXTURE_NAMES)[number];

export interface Fixture {
  name: FixtureName;
  dir: string;
  /** config.json as the loader completes it. */
  config: LlavaConfig;
  weights: WeightSource;
  tokenizer: TinyTokenizer;
  /** Image tokens per image (the vision encoder's rows). */
  imageTokens: number;
  /** How transformers.js runs it: LlavaProcessor expands <image> itself; otherwise the prompt must carry every token. */
  processorExpands: boolean;
  /** The prompt the model's chat template makes for `question` with one image. */
  chatPrompt(question: string): string;
}

// Tiny widths. SigLIP keeps its defining oddity: the image size is not a multiple of the patch (384/14 → 30/7), so
// the last pixels are dropped and 4×4 = 16 patches remain.
const CLIP_VISION = { hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 2, image_size: 28, patch_size: 7 };
const SIGLIP_VISION = { hidden_size: 32, intermediate_size: 48, num_hidden_layers: 2, num_attention_heads: 2, image_size: 30, patch_size: 7 };
const TEXT = { hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4 };

function llamaIds(tok: TinyTokenizer) {
  return { vocab_size: tok.vocabSize, bos_token_id: tok.bosTokenId!, eos_token_id: tok.eosTokenId };
}

/** A CLIPImageProcessor / SiglipImageProcessor file at another size, every other field as published. */
function resized(preprocessor: Record<string, unknown>, size: number): Record<string, unknown> {
  const out = { ...preprocessor };
  if (out.crop_size) out.crop_size = { height: size, width: size };
  const s = out.size as { shortest_edge?: number } | undefined;
  out.size = s && s.shortest_edge !== undefined ? { shortest_edge: size } : { height: size, width: size };
  return JSON.parse(JSON.stringify(out));
}

interface Recipe {
  config: Record<string, unknown>;
  tokenizer: TinyTokenizer;
  preprocessor: Record<string, unknown>;
  processor?: Record<string, unknown>;
  chatTemplateJson?: string;
  tokenizerConfigTemplate?: string;
  processorExpands: boolean;
  /** optimum's merged decoders have a use_cache_branch input; they are plain ONNX (our portable decoder). */
  useCacheBranch?: boolean;
}

function recipe(name: FixtureName): Recipe {
  const llama = llamaTinyTokenizer();
  const qwen = qwen2TinyTokenizer();
  const qwenText = { ...TEXT, vocab_size: qwen.vocabSize, bos_token_id: qwen.eosTokenId, eos_token_id: qwen.eosTokenId };
  switch (name) {
    case 'tiny-random-LlavaForConditionalGeneration':
      return {
        config: tiny(TINY_RANDOM_LLAVA.config, {
          text: { ...llamaIds(llama), pad_token_id: llama.padTokenId },
          top: { image_token_index: llama.imageTokenId },
        }),
        tokenizer: llama,
        preprocessor: TINY_RANDOM_LLAVA.preprocessor,
        processor: TINY_RANDOM_LLAVA.processor,
        processorExpands: true,
        useCacheBranch: true,
      };
    case 'llava-1.5-7b-hf':
    case 'bakLlava-v1-hf': {
      const published = name === 'bakLlava-v1-hf' ? BAKLLAVA : LLAVA_15_7B;
      return {
        config: tiny(published.config, {
          vision: CLIP_VISION,
          text: { ...TEXT, ...llamaIds(llama), ...(name === 'bakLlava-v1-hf' ? { num_key_value_heads: 2 } : {}) },
          top: { image_token_index: llama.imageTokenId, pad_token_id: llama.padTokenId },
        }),
        tokenizer: llama,
        preprocessor: resized(published.preprocessor, CLIP_VISION.image_size),
        processor: { ...LLAVA_15_7B.processor, patch_size: 7 },
        // transformers.js's LlavaProcessor counts the CLS the 'default' strategy drops: the prompt carries the tokens.
        processorExpands: false,
      };
    }
    case 'llava-interleave-qwen-0.5b-hf':
      return {
        config: tiny(LLAVA_INTERLEAVE_QWEN_05B.config, {
          vision: SIGLIP_VISION,
          text: { ...qwenText, num_key_value_heads: 4 },
          top: { image_token_index: qwen.imageTokenId },
        }),
        tokenizer: qwen,
        preprocessor: resized(LLAVA_INTERLEAVE_QWEN_05B.preprocessor, SIGLIP_VISION.image_size),
        processor: { ...LLAVA_INTERLEAVE_QWEN_05B.processor, patch_size: 7 },
        chatTemplateJson: LLAVA_INTERLEAVE_QWEN_05B.chatTemplate,
        processorExpands: true,
      };
    case 'llava-onevision-qwen2-0.5b-ov-hf':
      return {
        config: tiny(LLAVA_ONEVISION_QWEN2_05B.config, {
          vision: SIGLIP_VISION,
          text: { ...qwenText, num_key_value_heads: 2 },
          top: { image_token_index: qwen.imageTokenId },
        }),
        tokenizer: qwen,
        preprocessor: resized(LLAVA_ONEVISION_QWEN2_05B.preprocessor, SIGLIP_VISION.image_size),
        processor: { ...LLAVA_ONEVISION_QWEN2_05B.processor, num_image_tokens: 16 },
        chatTemplateJson: LLAVA_ONEVISION_QWEN2_05B.chatTemplate,
        // LlavaOnevisionProcessor is not a transformers.js processor: the prompt carries the image tokens.
        processorExpands: false,
      };
    case 'nanoLLaVA':
      return {
        config: tiny(NANOLLAVA.config, {
          vision: SIGLIP_VISION,
          text: { ...qwenText, num_key_value_heads: 4, num_image_tokens: 16 },
          top: { ...qwenText, num_key_value_heads: 4, num_image_tokens: 16, mm_hidden_size: SIGLIP_VISION.hidden_size, image_token_index: qwen.imageTokenId },
        }),
        tokenizer: qwen,
        preprocessor: resized(NANOLLAVA.preprocessor, SIGLIP_VISION.image_size),
        tokenizerConfigTemplate: NANOLLAVA.chatTemplate,
        processorExpands: false,
      };
  }
}

function writeJson(file: string, value: unknown): void {
  fs.writeFileSync(file, JSON.stringify(value, null, 2));
}

/** Builds the fixture folder under root (graphs by our builder, configs as the public repo has them). */
export function buildFixture(root: string, name: FixtureName, seed = 11): Fixture {
  const r = recipe(name);
  const config = completeLlavaConfig(r.config);
  const weights = randomWeights(config, seed);
  const dir = path.join(root, name);
  const decoder = r.useCacheBranch ? 'portable' : 'optimized';
  writeModelFolder({ outDir: dir, config, weights, decoder, tokenizer: { kind: r.tokenizer.bosTokenId === null ? 'tiny-qwen2' : 'tiny-llama' } });
  if (r.useCacheBranch) {
    const g = buildDecoderGraph(weights, config, { variant: decoder });
    g.input(DECODER_IO.useCacheBranch, 'bool', [1]);
    g.writeFile(path.join(dir, 'onnx', 'decoder_model_merged.onnx'));
  }
  // The public files replace what the builder wrote (config.json loses this package's own record).
  writeJson(path.join(dir, 'config.json'), r.config);
  writeJson(path.join(dir, 'preprocessor_config.json'), r.preprocessor);
  if (r.processor) writeJson(path.join(dir, 'processor_config.json'), r.processor);
  else fs.rmSync(path.join(dir, 'processor_config.json'), { force: true });
  if (r.chatTemplateJson) writeJson(path.join(dir, 'chat_template.json'), { chat_template: r.chatTemplateJson });
  const tokenizerConfigFile = path.join(dir, 'tokenizer_config.json');
  const tokenizerConfig = JSON.parse(fs.readFileSync(tokenizerConfigFile, 'utf8'));
  if (r.tokenizerConfigTemplate) tokenizerConfig.chat_template = r.tokenizerConfigTemplate;
  else if (r.chatTemplateJson) delete tokenizerConfig.chat_template;
  writeJson(tokenizerConfigFile, tokenizerConfig);
  const v = config.vision_config;
  const patches = Math.floor(v.image_size / v.patch_size) ** 2;
  // CLIP's 'default' drops the CLS row, SigLIP has none ('full'): one row per patch either way.
  const imageTokens = patches;
  const chatPrompt = (question: string): string => {
    switch (name) {
      case 'llava-interleave-qwen-0.5b-hf':
        return `<|im_start|>user\n<image>\n${question}<|im_end|>\n<|im_start|>assistant\n`;
      case 'llava-onevision-qwen2-0.5b-ov-hf':
        return `<|im_start|>user\n<image>\n${question}<|im_end|>\n<|im_start|>assistant\n`;
      case 'nanoLLaVA':
        return `<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<image>\n${question}<|im_end|>\n<|im_start|>assistant\n`;
      default:
        return `USER: <image>\n${question} ASSISTANT:`;
    }
  };
  return { name, dir, config, weights, tokenizer: r.tokenizer, imageTokens, processorExpands: r.processorExpands, chatPrompt };
}
