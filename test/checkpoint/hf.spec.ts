import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { completeLlavaConfig, normaliseLlavaName, openHfCheckpoint } from '../../lib/onnx/checkpoint/hf';
import type { ConvertibleCheckpoint } from '../../lib/onnx/checkpoint';
import { attentionWindow } from '../../lib/onnx/text/llama';
import { visionLayersUsed, visionTokenCount } from '../../lib/onnx/vision';
import { llavaWeightShapes } from '../../lib/onnx/weight-layout';
import { TensorToWrite, seededValues } from '../support/checkpoint-writers/encode';
import { writeSafetensors, writeShardedSafetensors } from '../support/checkpoint-writers/safetensors';
import { torchSave } from '../support/checkpoint-writers/torch-save';
import { useTmpDir } from '../support/checkpoint-writers/tmp-dir';

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
    data: Float32Array.from(seededValues(shape.reduce((a, b) => a * b, 1), i + 1), (v) => Math.round(v * 64) / 64),
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
    assert.throws(() => completeLlavaConfig({ model_type: 'llama' }),
      /not a LLaVA config the builder supports: model_type is "llama" \(supported: llava \(LlavaForConditionalGeneration\) or llava_qwen2 \(nanoLLaVA\)\)/);
    assert.throws(() => completeLlavaConfig({ model_type: 'llava_llama' }), /original haotian-liu LLaVA folder/);
    assert.throws(() => completeLlavaConfig({ model_type: 'llava_next' }), /model_type is "llava_next"/);
    assert.throws(
      () => completeLlavaConfig({ model_type: 'llava', vision_config: { model_type: 'dinov2' } }),
      /vision_config\.model_type "dinov2" is not supported \(supported: clip_vision_model, siglip_vision_model\)/,
    );
    assert.throws(
      () => completeLlavaConfig({ model_type: 'llava', text_config: { model_type: 'gemma' } }),
      /text_config\.model_type "gemma" is not supported \(supported: llama, mistral, qwen2\)/,
    );
  });

  it('completes the published llava-hf and nanoLLaVA configs with their class defaults', () => {
    // llava-hf/bakLlava-v1-hf (blame main): text_config leaves hidden/layers/heads to MistralConfig.
    const bak = completeLlavaConfig({
      architectures: ['LlavaForConditionalGeneration'], ignore_index: -100, image_token_index: 32000, model_type: 'llava', pad_token_id: 32001,
      projector_hidden_act: 'gelu',
      text_config: {
        _name_or_path: 'mistralai/Mistral-7B-v0.1', architectures: ['MistralForCausalLM'], intermediate_size: 14336, max_position_embeddings: 32768,
        model_type: 'mistral', num_key_value_heads: 8, rms_norm_eps: 1e-5, rope_theta: 10000.0, sliding_window: 4096, torch_dtype: 'bfloat16', vocab_size: 32064,
      },
      vision_config: {
        hidden_size: 1024, image_size: 336, intermediate_size: 4096, model_type: 'clip_vision_model', num_attention_heads: 16, num_hidden_layers: 24,
        patch_size: 14, projection_dim: 768, vocab_size: 32000,
      },
      vision_feature_layer: -2, vision_feature_select_strategy: 'default', vocab_size: 32064,
    });
    const t = bak.text_config;
    assert.deepEqual([t.hidden_size, t.num_hidden_layers, t.num_attention_heads, t.num_key_value_heads, t.hidden_act], [4096, 32, 32, 8, 'silu']);
    assert.equal(attentionWindow(t), 4096);
    assert.equal(visionTokenCount(bak), 576);

    // llava-hf/llava-interleave-qwen-0.5b-hf (blame 187fe5eb): SigLIP without hidden_act/eps, Qwen2 without rms_norm_eps.
    const interleave = completeLlavaConfig({
      architectures: ['LlavaForConditionalGeneration'], image_token_index: 151646, model_type: 'llava', projector_hidden_act: 'gelu',
      text_config: {
        hidden_size: 1024, intermediate_size: 2816, max_position_embeddings: 32768, model_type: 'qwen2', num_attention_heads: 16,
        num_hidden_layers: 24, num_key_value_heads: 16, rope_theta: 1000000.0, sliding_window: 32768, tie_word_embeddings: true,
        use_sliding_window: false, vocab_size: 152000,
      },
      tie_word_embeddings: true,
      vision_config: {
        hidden_size: 1152, image_size: 384, intermediate_size: 4304, model_type: 'siglip_vision_model', num_attention_heads: 16,
        num_hidden_layers: 26, patch_size: 14, vision_use_head: false,
      },
      vision_feature_layer: -1, vision_feature_select_strategy: 'full',
    });
    assert.deepEqual([interleave.vision_config.hidden_act, interleave.vision_config.layer_norm_eps], ['gelu_pytorch_tanh', 1e-6]);
    assert.equal(interleave.text_config.rms_norm_eps, 1e-6);
    assert.equal(attentionWindow(interleave.text_config), null);
    assert.deepEqual([visionTokenCount(interleave), visionLayersUsed(interleave)], [729, 26]);

    // qnguyen3/nanoLLaVA (flat llava_qwen2, Xenova/nanoLLaVA commit 4da9593 diff): the tower comes from mm_vision_tower.
    const nano = completeLlavaConfig({
      architectures: ['LlavaQwen2ForCausalLM'], model_type: 'llava_qwen2', mm_vision_tower: 'google/siglip-so400m-patch14-384', mm_hidden_size: 1152,
      mm_projector_type: 'mlp2x_gelu', image_aspect_ratio: 'pad', hidden_size: 1024, intermediate_size: 2816, num_hidden_layers: 24,
      num_attention_heads: 16, num_key_value_heads: 16, vocab_size: 151936, rope_theta: 1000000.0, rms_norm_eps: 1e-6, tie_word_embeddings: false,
      bos_token_id: 151645, eos_token_id: 151645, max_position_embeddings: 32768, hidden_act: 'silu', use_sliding_window: false,
    });
    assert.deepEqual([nano.vision_config.model_type, nano.vision_config.num_hidden_layers, nano.vision_config.hidden_size], ['siglip_vision_model', 27, 1152]);
    assert.deepEqual([visionLayersUsed(nano), visionTokenCount(nano), nano.vision_feature_select_strategy], [26, 729, 'full']);
    assert.deepEqual([nano.text_config.model_type, nano.text_config.hidden_size, nano.text_config.vocab_size], ['qwen2', 1024, 151936]);
    assert.equal('mm_vision_tower' in nano.text_config, false);
    assert.equal(nano.image_token_index, -200);
    assert.equal(nano.projector_type, 'mlp2x_gelu');
    assert.throws(() => completeLlavaConfig({ model_type: 'llava_qwen2', mm_vision_tower: 'openai/clip-vit-large-patch14-336' }),
      /mm_vision_tower "openai\/clip-vit-large-patch14-336" is not a known tower and there is no vision_config/);
    assert.throws(() => completeLlavaConfig({ model_type: 'llava_qwen2', mm_vision_tower: 'google/siglip-so400m-patch14-384', mm_projector_type: 'ldp' }),
      /mm_projector_type "ldp" is not supported/);
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
    assert.deepEqual(ckpt.tokenizerFiles.map((f) => path.basename(f)), ['tokenizer.json', 'tokenizer_config.json']);
    assert.deepEqual(ckpt.processorFiles.map((f) => path.basename(f)), ['preprocessor_config.json']);
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
    writeSafetensors(path.join(textOnly, 'model.safetensors'), tinyTensors().filter((t) => t.name.startsWith('language_model.')));
    assert.throws(() => openHfCheckpoint(textOnly), /does not hold LLaVA weights/);

    const wrongDepth = path.join(tmp(), 'wrong-depth');
    writeFolder(wrongDepth, { ...TINY_CONFIG, text_config: { ...TINY_CONFIG.text_config, num_hidden_layers: 3 } });
    writeSafetensors(path.join(wrongDepth, 'model.safetensors'), tinyTensors());
    assert.throws(
      () => openHfCheckpoint(wrongDepth),
      /does not match its config\.json: language_model\.model\.layers\.2\.input_layernorm\.weight is missing/,
    );
  });
});
