import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { completeLlavaConfig } from '../../../lib/model/hf-config';
import { normaliseLlavaName, openHfCheckpoint } from '../../../lib/onnx/checkpoint/hf';
import type { ConvertibleCheckpoint } from '../../../lib/onnx/checkpoint';
import { attentionWindow } from '../../../lib/onnx/text/llama';
import { visionLayersUsed, visionTokenCount } from '../../../lib/onnx/vision';
import { llavaWeightShapes } from '../../../lib/onnx/weight-layout';
import { TensorToWrite, seededValues } from '../../support/checkpoint-writers/encode';
import { writeSafetensors, writeShardedSafetensors } from '../../support/checkpoint-writers/safetensors';
import { torchSave } from '../../support/checkpoint-writers/torch-save';
import { useTmpDir } from '../../support/checkpoint-writers/tmp-dir';

/** A tiny llava config.json as llava-hf writes it: only non-default fields (no hidden_act, eps, kv heads…). */
const TINY_CONFIG = {
  architectures: ['LlavaForConditionalGeneration'],
  model_type: 'llava',
  pad_token_id: 1001,
  image_token_index: 1000,
  vision_config: {
    model_type: 'clip_vision_model',
    hidden_size: 16,
    intermediate_size: 32,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    image_size: 16,
    patch_size: 8,
  },
  text_config: {
    model_type: 'llama',
    vocab_size: 1002,
    hidden_size: 24,
    intermediate_size: 40,
    num_hidden_layers: 2,
    num_attention_heads: 3,
    max_position_embeddings: 4096,
    rms_norm_eps: 1e-5,
  },
};

/** Every tensor a tiny LLaVA of TINY_CONFIG has, with seeded values, named by `rename` (default: llava-hf names). */
function tinyTensors(rename = (n: string) => n): TensorToWrite[] {
  const config = completeLlavaConfig(TINY_CONFIG);
  return llavaWeightShapes(config).map(([name, shape], i) => ({
    name: rename(name),
    shape,
    dtype: i % 3 === 0 ? 'bfloat16' : 'float32',
    data: Float32Array.from(
      seededValues(
        shape.reduce((a, b) => a * b, 1),
        i + 1,
      ),
      (v) => Math.round(v * 64) / 64,
    ),
  }));
}

/** transformers ≥ 4.52 names. */
function newLayoutName(name: string): string {
  if (name.startsWith('language_model.model.')) return 'model.language_model.' + name.slice('language_model.model.'.length);
  if (name.startsWith('language_model.lm_head.')) return name.slice('language_model.'.length);
  return 'model.' + name;
}

function writeFolder(dir: string, config: object, files: Record<string, string> = {}): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
}

describe('checkpoint/hf', () => {
  const tmp = useTmpDir('hf');

  it('fills the transformers defaults a llava-hf config.json leaves out', () => {
    const c = completeLlavaConfig(TINY_CONFIG);
    assert.equal(c.vision_feature_layer, -2);
    assert.equal(c.vision_feature_select_strategy, 'default');
    assert.equal(c.projector_hidden_act, 'gelu');
    assert.equal(c.image_token_index, 1000);
    assert.equal(c.vision_config.hidden_act, 'quick_gelu');
    assert.equal(c.vision_config.layer_norm_eps, 1e-5);
    assert.equal(c.vision_config.num_channels, 3);
    assert.equal(c.text_config.num_key_value_heads, 3);
    assert.equal(c.text_config.rope_theta, 10000);
    assert.equal(c.text_config.hidden_act, 'silu');
    assert.equal(c.text_config.rms_norm_eps, 1e-5);
    assert.equal(c.text_config.tie_word_embeddings, false);

    // No vision_config / text_config at all: LlavaConfig's CLIP ViT-L/14-336 and LlamaConfig() (LLaMA-7B).
    const bare = completeLlavaConfig({ model_type: 'llava' });
    assert.deepEqual(
      [bare.vision_config.hidden_size, bare.vision_config.num_hidden_layers, bare.vision_config.image_size, bare.vision_config.patch_size],
      [1024, 24, 336, 14],
    );
    assert.deepEqual(
      [bare.text_config.hidden_size, bare.text_config.num_hidden_layers, bare.text_config.intermediate_size, bare.text_config.vocab_size],
      [4096, 32, 11008, 32000],
    );
    assert.equal(completeLlavaConfig({ model_type: 'llava', image_token_id: 151646 }).image_token_index, 151646);
  });

  it('refuses a model type or text model the builder cannot make yet, before reading weights', () => {
    for (const [config, expected] of [
      [{ ...TINY_CONFIG, model_type: 'llava_onevision' }, /model_type "llava_onevision" cannot be built yet .*the builder converts llava, llava_qwen2/],
      [
        { ...TINY_CONFIG, text_config: { ...TINY_CONFIG.text_config, model_type: 'gemma' } },
        /text_config\.model_type "gemma" is not supported \(supported: llama, mistral, qwen2\)/,
      ],
      [
        { ...TINY_CONFIG, text_config: { ...TINY_CONFIG.text_config, model_type: 'qwen2', num_key_value_heads: 3, use_sliding_window: true } },
        /qwen2 use_sliding_window is not supported/,
      ],
    ] as const) {
      const dir = path.join(tmp(), `refused-${config.model_type}-${config.text_config.model_type}`);
      writeFolder(dir, config);
      assert.throws(() => openHfCheckpoint(dir), expected);
    }
  });

  it('the published SigLIP and Mistral configs, as the builder reads them: 729 tokens, the layers used, the window', () => {
    // llava-hf/llava-interleave-qwen-0.5b-hf (blame 187fe5eb): SigLIP without hidden_act/eps, 26 layers, −1, full.
    const interleave = completeLlavaConfig({
      architectures: ['LlavaForConditionalGeneration'],
      image_token_index: 151646,
      model_type: 'llava',
      projector_hidden_act: 'gelu',
      text_config: {
        hidden_size: 1024,
        intermediate_size: 2816,
        model_type: 'qwen2',
        num_attention_heads: 16,
        num_hidden_layers: 24,
        num_key_value_heads: 16,
        vocab_size: 152000,
      },
      vision_config: {
        hidden_size: 1152,
        image_size: 384,
        intermediate_size: 4304,
        model_type: 'siglip_vision_model',
        num_attention_heads: 16,
        num_hidden_layers: 26,
        patch_size: 14,
        vision_use_head: false,
      },
      vision_feature_layer: -1,
      vision_feature_select_strategy: 'full',
    });
    assert.deepEqual([visionTokenCount(interleave), visionLayersUsed(interleave), attentionWindow(interleave.text_config)], [729, 26, null]);
    // qnguyen3/nanoLLaVA's flat config: so400m from mm_vision_tower, the last of its 27 layers skipped.
    const nano = completeLlavaConfig(
      {
        model_type: 'llava_qwen2',
        mm_vision_tower: 'google/siglip-so400m-patch14-384',
        mm_projector_type: 'mlp2x_gelu',
        hidden_size: 1024,
        intermediate_size: 2816,
        num_hidden_layers: 24,
        num_attention_heads: 16,
        num_key_value_heads: 16,
        vocab_size: 151936,
      },
      { imageTokenId: -200 },
    );
    assert.deepEqual([visionTokenCount(nano), visionLayersUsed(nano)], [729, 26]);
    // llava-hf/bakLlava-v1-hf (blame main): MistralConfig widths, a 4096-token window.
    const bak = completeLlavaConfig({
      model_type: 'llava',
      text_config: {
        intermediate_size: 14336,
        max_position_embeddings: 32768,
        model_type: 'mistral',
        num_key_value_heads: 8,
        rms_norm_eps: 1e-5,
        sliding_window: 4096,
        vocab_size: 32064,
      },
    });
    assert.deepEqual([attentionWindow(bak.text_config), visionTokenCount(bak)], [4096, 576]);
  });

  it('opens a sharded safetensors folder with llava-hf names, shapes, values and tokenizer files', () => {
    const dir = path.join(tmp(), 'classic');
    writeFolder(dir, TINY_CONFIG, { 'tokenizer.json': '{}', 'tokenizer_config.json': '{}', 'preprocessor_config.json': '{}' });
    const tensors = tinyTensors();
    writeShardedSafetensors(dir, [tensors.slice(0, 20), tensors.slice(20)]);
    const ckpt: ConvertibleCheckpoint & { processorFiles: string[] } = openHfCheckpoint(dir);
    assert.equal(ckpt.config.text_config.hidden_size, 24);
    assert.deepEqual(ckpt.weights.names().sort(), tensors.map((t) => t.name).sort());
    for (const t of [tensors[0], tensors[7], tensors[tensors.length - 1]]) {
      const w = ckpt.weights.get(t.name)!;
      assert.deepEqual(w.shape, t.shape);
      assert.deepEqual(w.read(), t.data);
    }
    assert.deepEqual(
      ckpt.tokenizerFiles.map((f) => path.basename(f)),
      ['tokenizer.json', 'tokenizer_config.json'],
    );
    assert.deepEqual(
      ckpt.processorFiles.map((f) => path.basename(f)),
      ['preprocessor_config.json'],
    );
  });

  it('normalises the newer transformers layout (model.vision_tower.*, model.language_model.*, lm_head.*)', () => {
    assert.equal(normaliseLlavaName('model.language_model.layers.0.mlp.up_proj.weight'), 'language_model.model.layers.0.mlp.up_proj.weight');
    assert.equal(normaliseLlavaName('lm_head.weight'), 'language_model.lm_head.weight');
    assert.equal(normaliseLlavaName('model.multi_modal_projector.linear_2.bias'), 'multi_modal_projector.linear_2.bias');
    const dir = path.join(tmp(), 'new-layout');
    writeFolder(dir, TINY_CONFIG);
    const classic = tinyTensors();
    writeSafetensors(path.join(dir, 'model.safetensors'), tinyTensors(newLayoutName));
    const ckpt = openHfCheckpoint(dir);
    assert.deepEqual(ckpt.weights.names().sort(), classic.map((t) => t.name).sort());
    const head = ckpt.weights.get('language_model.lm_head.weight')!;
    assert.deepEqual(head.read(), classic.find((t) => t.name === 'language_model.lm_head.weight')!.data);
  });

  it('opens pytorch_model.bin folders through the PyTorch reader', () => {
    const dir = path.join(tmp(), 'bin');
    writeFolder(dir, TINY_CONFIG);
    const tensors = tinyTensors();
    torchSave(path.join(dir, 'pytorch_model.bin'), tensors);
    const ckpt = openHfCheckpoint(dir);
    const proj = ckpt.weights.get('multi_modal_projector.linear_1.weight')!;
    assert.deepEqual(proj.shape, [24, 16]);
    assert.deepEqual(proj.read(), tensors.find((t) => t.name === 'multi_modal_projector.linear_1.weight')!.data);
  });

  it('explains what is wrong with folders that are not LLaVA checkpoints', () => {
    const empty = path.join(tmp(), 'empty');
    fs.mkdirSync(empty);
    assert.throws(() => openHfCheckpoint(empty), /is not a Hugging Face model folder: it has no config\.json/);

    const noWeights = path.join(tmp(), 'no-weights');
    writeFolder(noWeights, TINY_CONFIG);
    assert.throws(() => openHfCheckpoint(noWeights), /has no weights: expected one of model\.safetensors\.index\.json/);

    const textOnly = path.join(tmp(), 'text-only');
    writeFolder(textOnly, TINY_CONFIG);
    writeSafetensors(
      path.join(textOnly, 'model.safetensors'),
      tinyTensors().filter((t) => t.name.startsWith('language_model.')),
    );
    assert.throws(() => openHfCheckpoint(textOnly), /does not hold LLaVA weights/);

    const wrongDepth = path.join(tmp(), 'wrong-depth');
    writeFolder(wrongDepth, { ...TINY_CONFIG, text_config: { ...TINY_CONFIG.text_config, num_hidden_layers: 3 } });
    writeSafetensors(path.join(wrongDepth, 'model.safetensors'), tinyTensors());
    assert.throws(() => openHfCheckpoint(wrongDepth), /does not match its config\.json: language_model\.model\.layers\.2\.input_layernorm\.weight is missing/);
  });
});
