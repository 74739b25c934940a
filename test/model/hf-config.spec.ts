// config.json as transformers reads it: the public configs complete to the widths the published models have.
import { strict as assert } from 'assert';
import { completeLlavaConfig } from '../../lib/model/hf-config';
import { headDim } from '../../lib/model/config';
import { BAKLLAVA, LLAVA_15_7B, LLAVA_INTERLEAVE_QWEN_05B, LLAVA_ONEVISION_QWEN2_05B, NANOLLAVA, TINY_RANDOM_LLAVA } from '../support/public-configs';

describe('config.json with Hugging Face class defaults', () => {
  it('tiny-random LLaVA: LlamaConfig gives max_position_embeddings, rms_norm_eps and rope_theta', () => {
    const c = completeLlavaConfig(TINY_RANDOM_LLAVA.config);
    assert.equal(c.text_config.max_position_embeddings, 2048);
    assert.equal(c.text_config.rms_norm_eps, 1e-6);
    assert.equal(c.text_config.rope_theta, 10000);
    assert.equal(c.text_config.hidden_size, 16);
    assert.equal(headDim(c.text_config), 4);
    assert.equal(c.vision_config.hidden_act, 'quick_gelu');
    assert.equal(c.vision_config.layer_norm_eps, 1e-5);
  });

  it('llava-1.5-7b-hf and bakLlava: LlamaConfig / MistralConfig give hidden size, layers and heads', () => {
    const llava = completeLlavaConfig(LLAVA_15_7B.config).text_config;
    assert.deepEqual(
      [
        llava.hidden_size,
        llava.num_hidden_layers,
        llava.num_attention_heads,
        llava.num_key_value_heads,
        llava.intermediate_size,
        llava.max_position_embeddings,
        llava.rms_norm_eps,
      ],
      [4096, 32, 32, 32, 11008, 4096, 1e-5],
    );
    const mistral = completeLlavaConfig(BAKLLAVA.config).text_config;
    assert.deepEqual(
      [
        mistral.model_type,
        mistral.hidden_size,
        mistral.num_hidden_layers,
        mistral.num_attention_heads,
        mistral.num_key_value_heads,
        mistral.rope_theta,
        mistral.sliding_window,
      ],
      ['mistral', 4096, 32, 32, 8, 10000, 4096],
    );
    assert.equal(headDim(mistral), 128);
    // A Mistral text_config without num_key_value_heads takes MistralConfig's 8, not the head count.
    const noKv = structuredClone(BAKLLAVA.config) as Record<string, any>;
    delete noKv.text_config.num_key_value_heads;
    assert.equal(completeLlavaConfig(noKv).text_config.num_key_value_heads, 8);
  });

  it('SigLIP + Qwen2 (interleave, onevision): SiglipVisionConfig and Qwen2Config defaults, llava_onevision read as LLaVA', () => {
    const interleave = completeLlavaConfig(LLAVA_INTERLEAVE_QWEN_05B.config);
    assert.equal(interleave.text_config.rms_norm_eps, 1e-6);
    assert.equal(interleave.text_config.sliding_window, null);
    assert.equal(interleave.vision_config.hidden_act, 'gelu_pytorch_tanh');
    const ov = completeLlavaConfig(LLAVA_ONEVISION_QWEN2_05B.config);
    assert.equal(ov.model_type, 'llava_onevision');
    assert.equal(ov.vision_config.layer_norm_eps, 1e-6);
    assert.equal(ov.vision_config.num_channels, 3);
    assert.deepEqual([ov.text_config.num_attention_heads, ov.text_config.num_key_value_heads, headDim(ov.text_config)], [14, 2, 64]);
    // LlavaOnevisionConfig's own defaults: 'full' features of layer -1, image token 151646, SigLIP + Qwen2.
    const bare = completeLlavaConfig({ model_type: 'llava_onevision' });
    assert.deepEqual([bare.vision_feature_layer, bare.vision_feature_select_strategy, bare.image_token_index], [-1, 'full', 151646]);
    assert.deepEqual([bare.vision_config.model_type, bare.text_config.model_type, bare.text_config.num_key_value_heads], ['siglip_vision_model', 'qwen2', 32]);
    // LlavaConfig's (llava-hf LLaVA-1.5): the penultimate layer, CLS dropped.
    const llava = completeLlavaConfig({ model_type: 'llava' });
    assert.deepEqual([llava.vision_feature_layer, llava.vision_feature_select_strategy], [-2, 'default']);
  });

  it('nanoLLaVA (llava_qwen2): the flat Qwen2 fields are the text config, mm_* fields the projector and tower', () => {
    const c = completeLlavaConfig(NANOLLAVA.config);
    assert.equal(c.model_type, 'llava_qwen2');
    assert.deepEqual(
      [
        c.text_config.model_type,
        c.text_config.hidden_size,
        c.text_config.num_hidden_layers,
        c.text_config.vocab_size,
        c.text_config.rope_theta,
        c.text_config.eos_token_id,
      ],
      ['qwen2', 1024, 24, 151936, 1e6, 151645],
    );
    assert.equal(c.projector_hidden_act, 'gelu');
    assert.equal(c.vision_feature_select_strategy, 'full');
    assert.deepEqual(
      [c.vision_config.model_type, c.vision_config.num_hidden_layers, c.vision_config.hidden_act],
      ['siglip_vision_model', 27, 'gelu_pytorch_tanh'],
    );
    // The original qnguyen3 file has no vision_config: the tower comes from mm_vision_tower.
    const original = { ...NANOLLAVA.config } as Record<string, unknown>;
    delete original.vision_config;
    delete original.text_config;
    delete original.image_token_index;
    const c2 = completeLlavaConfig(original, { imageTokenId: 151646 });
    assert.deepEqual([c2.vision_config.hidden_size, c2.vision_config.image_size, c2.vision_config.patch_size, c2.image_token_index], [1152, 384, 14, 151646]);
    assert.throws(() => completeLlavaConfig(original), /no image_token_index \(nor image_token_id\), and the tokenizer has no <image> token/);
  });

  it('transformers ≥ 5: rope_parameters gives rope_theta; image_token_id is image_token_index', () => {
    const v5 = structuredClone(LLAVA_INTERLEAVE_QWEN_05B.config) as Record<string, any>;
    delete v5.text_config.rope_theta;
    v5.text_config.rope_parameters = { rope_type: 'default', rope_theta: 1000000 };
    v5.image_token_id = v5.image_token_index;
    delete v5.image_token_index;
    const c = completeLlavaConfig(v5);
    assert.equal(c.text_config.rope_theta, 1000000);
    assert.equal(c.image_token_index, 151646);
  });

  it('refuses what it cannot read, naming what it found and what is supported', () => {
    assert.throws(() => completeLlavaConfig({ model_type: 'llama' }), /model_type is "llama"; supported: llava, llava_onevision, llava_qwen2/);
    assert.throws(() => completeLlavaConfig({ model_type: 'llava_next' }), /"llava_next" \(LLaVA-NeXT .*anyres.*\); supported: llava/);
    assert.throws(() => completeLlavaConfig({ model_type: 'llava_llama' }), /original haotian-liu LLaVA folder/);
    assert.throws(
      () => completeLlavaConfig({ model_type: 'llava', vision_config: { model_type: 'dinov2' } }),
      /vision_config\.model_type "dinov2" is not supported \(supported: clip_vision_model, siglip_vision_model\)/,
    );
    assert.throws(
      () => completeLlavaConfig({ model_type: 'llava', text_config: { model_type: 'gemma' } }),
      /text_config\.model_type "gemma" is not supported \(supported: llama, mistral, qwen2\)/,
    );
    assert.throws(() => completeLlavaConfig({ model_type: 'llava', vision_feature_layer: [-2, -5] }), /one layer index only/);
    assert.throws(
      () => completeLlavaConfig({ model_type: 'llava', text_config: { hidden_size: 'big' } }),
      /text_config\.hidden_size must be a positive integer/,
    );
  });
});
