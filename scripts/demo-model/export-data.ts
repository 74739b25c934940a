// Writes what scripts/demo-model/train.py trains on, into one folder that is also the Hugging Face checkpoint the
// training completes (train.py adds model.safetensors; `llava build --from` converts it):
//   config.json, preprocessor_config.json, generation_config.json, tokenizer files: the demo model's definition;
//   train/pixels.f32: every training scene as the pipeline's own preprocessing leaves it (3×S×S float32 each);
//   train/examples.json: the prompts (token ids as the pipeline tokenizes them, image rows marked), each scene's
//   caption ids, and its objects (colour and shape index, centre and half-size as fractions of the side) for train.py's
//   auxiliary loss.
//   eval/: the same for held-out scenes (seeds from HELD_OUT_SEED_START), which train.py reports its accuracy on.
// Usage: node dist/scripts/demo-model/export-data.js OUT_DIR [SCENES] [EVAL_SCENES]
import * as fs from 'fs';
import * as path from 'path';
import { CLIP_VIT_L_336, LlavaConfig } from '../../lib/model/config';
import { CLIP_MEAN, CLIP_STD } from '../../lib/model/config';
import { getPreset } from '../../lib/pipeline/presets';
import { llamaTinyTokenizer, writeTinyTokenizer } from '../../lib/model/tiny-tokenizer';
import { preprocessImage } from '../../lib/pipeline/image-preprocess';
import { buildPrompt } from '../../lib/pipeline/prompt';
import { CAPTION_INSTRUCTION, userText } from '../../lib/pipeline/templates';
import { PromptTokenizer } from '../../lib/pipeline/tokens';
import { COLOURS, Colour, HELD_OUT_SEED_START, renderScene, scene, SCENE_SIZE, SHAPES } from './scenes';

/** Questions the demo answers with its caption, besides the caption instruction itself. */
export const DEMO_QUESTIONS = [CAPTION_INSTRUCTION, 'What is in the image?', 'What do you see?', 'Describe this picture.'];

/**
 * The demo model: a small CLIP tower (96 px, 12 px patches: 64 image tokens) and a small LLaMA, with the tiny LLaMA
 * tokenizer. Its config is a llava-hf LlavaConfig, so `llava build --from` reads it like any checkpoint's.
 */
export function demoConfig(): LlavaConfig {
  const tok = llamaTinyTokenizer();
  return {
    model_type: 'llava',
    architectures: ['LlavaForConditionalGeneration'],
    image_token_index: tok.imageTokenId,
    pad_token_id: tok.padTokenId,
    vision_feature_layer: -2,
    vision_feature_select_strategy: 'default',
    projector_hidden_act: 'gelu',
    multimodal_projector_bias: true,
    image_seq_length: 64,
    vision_config: {
      ...CLIP_VIT_L_336,
      hidden_size: 128,
      intermediate_size: 256,
      num_hidden_layers: 4,
      num_attention_heads: 4,
      image_size: 96,
      patch_size: 12,
    },
    text_config: {
      model_type: 'llama',
      vocab_size: tok.vocabSize,
      hidden_size: 96,
      intermediate_size: 256,
      num_hidden_layers: 2,
      num_attention_heads: 6,
      num_key_value_heads: 2,
      head_dim: 16,
      max_position_embeddings: 256,
      rms_norm_eps: 1e-6,
      rope_theta: 10000,
      hidden_act: 'silu',
      tie_word_embeddings: false,
      bos_token_id: tok.bosTokenId ?? undefined,
      eos_token_id: tok.eosTokenId,
    },
  };
}

/** The preprocessing the demo model's folder asks for (the llava-hf CLIP processor at the tower's input size). */
export function demoPreprocess(config: LlavaConfig) {
  return { mode: 'crop' as const, size: config.vision_config.image_size, mean: [...CLIP_MEAN] as [number, number, number], std: [...CLIP_STD] as [number, number, number] };
}

/**
 * The prompts the package builds for a caption: the caption example's template (mmpretrain v1.5 caption) and the
 * model's chat template (what `llava generate` and a plain question use), each tokenized the way llm generate does.
 */
function demoPrompts(tokenizer: PromptTokenizer, imageTokenCount: number): Array<{ text: string; ids: number[]; imagePositions: number[] }> {
  const chat = getPreset('llava-1.5-hf');
  const caption = getPreset('llava-7b-v1.5_caption');
  const rendered = [
    buildPrompt(caption, tokenizer.chatTemplate, { question: CAPTION_INSTRUCTION }),
    ...DEMO_QUESTIONS.map((question) => buildPrompt(chat, tokenizer.chatTemplate, { question })),
  ];
  return rendered.map((segments) => {
    const encoded = tokenizer.encodePrompt(segments, { imageTokenCount, style: 'hf' });
    return { text: segments.map((s) => s.text).join(''), ids: encoded.ids, imagePositions: encoded.imagePositions };
  });
}

async function main(): Promise<void> {
  const [outArg, countArg, evalArg] = process.argv.slice(2);
  if (!outArg) throw new Error('usage: export-data.js OUT_DIR [SCENES] [EVAL_SCENES]');
  const out = path.resolve(outArg);
  const count = countArg ? Number(countArg) : 12000;
  const evalCount = evalArg ? Number(evalArg) : 200;
  const config = demoConfig();
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'config.json'), JSON.stringify({ ...config, 'node-red-contrib-llava': { source: 'scripts/demo-model (synthetic shapes)' } }, null, 2));
  const pre = demoPreprocess(config);
  fs.writeFileSync(path.join(out, 'preprocessor_config.json'), JSON.stringify({
    image_processor_type: 'CLIPImageProcessor', do_resize: true, size: { shortest_edge: pre.size }, resample: 3,
    do_center_crop: true, crop_size: { height: pre.size, width: pre.size }, do_rescale: true, rescale_factor: 1 / 255,
    do_normalize: true, image_mean: pre.mean, image_std: pre.std, do_convert_rgb: true,
  }, null, 2));
  fs.writeFileSync(path.join(out, 'generation_config.json'), JSON.stringify({ bos_token_id: config.text_config.bos_token_id, eos_token_id: config.text_config.eos_token_id, max_new_tokens: 32 }, null, 2));
  writeTinyTokenizer(out, llamaTinyTokenizer());
  const tokenizer = PromptTokenizer.fromFolder(out);

  const imageTokens = (config.vision_config.image_size / config.vision_config.patch_size) ** 2;
  const prompts = demoPrompts(tokenizer, imageTokens);
  const colourNames = Object.keys(COLOURS) as Colour[];
  const writeSet = async (dir: string, firstSeed: number, scenes: number): Promise<void> => {
    fs.mkdirSync(path.join(out, dir), { recursive: true });
    const pixels = fs.openSync(path.join(out, dir, 'pixels.f32'), 'w');
    const captions: number[][] = [];
    const captionTexts: string[] = [];
    const objects: number[][][] = [];
    for (let seed = firstSeed; seed < firstSeed + scenes; seed++) {
      const s = scene(seed);
      const image = await preprocessImage(await renderScene(s), pre);
      fs.writeSync(pixels, Buffer.from(image.pixels.buffer, image.pixels.byteOffset, image.pixels.byteLength));
      captions.push([...tokenizer.encodeSegments([userText(s.caption)], false), config.text_config.eos_token_id as number]);
      captionTexts.push(s.caption);
      objects.push(s.objects.map((o) => [colourNames.indexOf(o.colour), SHAPES.indexOf(o.shape), o.x / SCENE_SIZE, o.y / SCENE_SIZE, o.r / SCENE_SIZE]));
    }
    fs.closeSync(pixels);
    fs.writeFileSync(path.join(out, dir, 'examples.json'), JSON.stringify({
      imageSize: pre.size, imageTokens, imageTokenId: config.image_token_index, prompts, captions, captionTexts, objects,
    }));
  };
  await writeSet('train', 0, count);
  // Seeds well past the test's and the demo picture's, so the test stays a check on scenes nothing was tuned on.
  await writeSet('eval', HELD_OUT_SEED_START + 10_000, evalCount);
  console.log(`${count} + ${evalCount} scenes, ${prompts.length} prompts (${prompts.map((p) => p.ids.length).join('/')} ids) → ${out}`);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
