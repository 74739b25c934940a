import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import type { ConvertibleCheckpoint } from '../../../lib/onnx/checkpoint';
import { openMmpretrainCheckpoint } from '../../../lib/onnx/checkpoint/mmpretrain';
import { llavaWeightShapes } from '../../../lib/onnx/weight-layout';
import { TensorToWrite } from '../../support/checkpoint-writers/encode';
import { D, F, H, I, PATCH, TLAYERS, VLAYERS, clipVision, llavaLanguage, tensor } from '../../support/checkpoint-writers/mmpretrain-tiny';
import { torchSave } from '../../support/checkpoint-writers/torch-save';
import { useTmpDir } from '../../support/checkpoint-writers/tmp-dir';

const byName = (tensors: TensorToWrite[], name: string) => tensors.find((t) => t.name === name)!;

describe('checkpoint/mmpretrain', () => {
  const tmp = useTmpDir('mmpre');
  const file = (name: string) => path.join(tmp(), name);

  // v1.5: vision from a timm-converted CLIP .pth ('backbone.' prefix) nested mmengine-style, LLaVA .pth flat.
  const v15Vision = clipVision('backbone.', 336, [tensor('head.layers.head.weight', [10, D])]);
  const v15Llava = [...llavaLanguage(40, 2), tensor('model.lang_encoder.model.layers.0.self_attn.rotary_emb.inv_freq', [4])];
  before(() => {
    torchSave(file('clip-336.pth'), v15Vision, {
      wrap: (sd) =>
        new Map<unknown, unknown>([
          ['meta', new Map([['epoch', 1]])],
          ['state_dict', sd],
        ]) as never,
    });
    torchSave(file('llava-v1.5.pth'), v15Llava);
    // v1: openai-clip_to_mmpretrain-clip.py keeps 'visual.' and renames visual.proj to visual_proj.proj.
    torchSave(file('clip-224.pth'), clipVision('visual.', 224, [tensor('visual_proj.proj', [D, 8])]));
    torchSave(file('llava-v1.pth'), llavaLanguage(43, 1));
  });

  it('maps a v1.5 checkpoint to exactly the llava-hf names and shapes its derived config implies', () => {
    const { config, weights, ignored, imStartEnd } = openMmpretrainCheckpoint({
      llava: file('llava-v1.5.pth'),
      vision: file('clip-336.pth'),
      preset: 'llava-7b-v1.5_caption',
      visionHeads: 2,
      textHeads: 3,
    });
    const expected = new Map(llavaWeightShapes(config).map(([n, s]) => [n, s]));
    expected.set('vision_tower.vision_model.post_layernorm.weight', [D]);
    expected.set('vision_tower.vision_model.post_layernorm.bias', [D]);
    assert.deepEqual(weights.names().sort(), [...expected.keys()].sort());
    for (const name of weights.names()) assert.deepEqual(weights.get(name)!.shape, expected.get(name), name);
    assert.deepEqual(ignored.sort(), ['head.layers.head.weight', 'model.lang_encoder.model.layers.0.self_attn.rotary_emb.inv_freq']);
    assert.equal(imStartEnd, undefined);

    assert.equal(config.vision_feature_layer, -1);
    assert.equal(config.vision_feature_select_strategy, 'default');
    assert.equal(config.projector_type, 'mlp2x_gelu');
    assert.equal(config.projector_hidden_act, 'gelu');
    assert.equal(config.image_token_index, -200);
    assert.equal(config.image_seq_length, 576);
    assert.deepEqual(config.vision_config, {
      model_type: 'clip_vision_model',
      hidden_size: D,
      intermediate_size: F,
      num_hidden_layers: VLAYERS,
      num_attention_heads: 2,
      image_size: 336,
      patch_size: PATCH,
      num_channels: 3,
      hidden_act: 'quick_gelu',
      layer_norm_eps: 1e-5,
    });
    const t = config.text_config;
    assert.deepEqual(
      [t.vocab_size, t.hidden_size, t.intermediate_size, t.num_hidden_layers, t.num_attention_heads, t.num_key_value_heads, t.tie_word_embeddings],
      [40, H, I, TLAYERS, 3, 3, false],
    );
    assert.equal(t.rms_norm_eps, 1e-6);
  });

  it('splits attn.qkv into q/k/v row blocks and reshapes cls_token / pos_embed, keeping values', () => {
    const { weights } = openMmpretrainCheckpoint({
      llava: file('llava-v1.5.pth'),
      vision: file('clip-336.pth'),
      preset: 'v1.5',
      visionHeads: 2,
      textHeads: 3,
    });
    const v = 'vision_tower.vision_model.';
    for (const kind of ['weight', 'bias']) {
      const qkv = byName(v15Vision, `backbone.layers.1.attn.qkv.${kind}`).data;
      const block = qkv.length / 3;
      ['q_proj', 'k_proj', 'v_proj'].forEach((proj, i) => {
        const got = weights.get(`${v}encoder.layers.1.self_attn.${proj}.${kind}`)!.read();
        assert.deepEqual(got, qkv.slice(i * block, (i + 1) * block), `${proj}.${kind}`);
      });
    }
    assert.deepEqual(weights.get(`${v}embeddings.class_embedding`)!.read(), byName(v15Vision, 'backbone.cls_token').data);
    assert.deepEqual(weights.get(`${v}embeddings.position_embedding.weight`)!.shape, [577, D]);
    assert.deepEqual(weights.get(`${v}encoder.layers.0.mlp.fc2.weight`)!.read(), byName(v15Vision, 'backbone.layers.0.ffn.layers.1.weight').data);
    assert.deepEqual(weights.get(`${v}pre_layrnorm.bias`)!.read(), byName(v15Vision, 'backbone.pre_norm.bias').data);
    assert.deepEqual(weights.get('multi_modal_projector.linear_2.weight')!.read(), byName(v15Llava, 'model.lang_encoder.model.mm_projector.2.weight').data);
    assert.deepEqual(
      weights.get('language_model.model.layers.1.mlp.down_proj.weight')!.read(),
      byName(v15Llava, 'model.lang_encoder.model.layers.1.mlp.down_proj.weight').data,
    );
    assert.deepEqual(weights.get('language_model.lm_head.weight')!.read(), byName(v15Llava, 'model.lang_encoder.lm_head.weight').data);
  });

  it('v1: 224 px, one-Linear projector, OpenAI-converted CLIP keys, <im_start>/<im_end> ids', () => {
    const { config, weights, ignored, imStartEnd } = openMmpretrainCheckpoint({
      llava: file('llava-v1.pth'),
      vision: file('clip-224.pth'),
      preset: 'llava-7b-v1_caption',
      visionHeads: 2,
      textHeads: 3,
    });
    assert.equal(config.projector_type, 'linear');
    assert.equal(config.projector_hidden_act, 'linear');
    assert.equal(config.vision_config.image_size, 224);
    assert.equal(config.image_seq_length, 256);
    assert.equal(weights.get('multi_modal_projector.linear_2.weight'), undefined);
    assert.deepEqual(weights.get('multi_modal_projector.linear_1.weight')!.shape, [H, D]);
    assert.deepEqual(ignored, ['visual_proj.proj']);
    assert.deepEqual(imStartEnd, { startId: 41, endId: 42 });
    assert.equal(config['node-red-contrib-llava']!.im_start_token_id, 41);
    assert.equal(config['node-red-contrib-llava']!.preset, 'llava-7b-v1_caption');
  });

  it('v1: takes <im_start>/<im_end> ids from the given tokenizer and returns its files', () => {
    const dir = path.join(tmp(), 'tokenizer-v1');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'added_tokens.json'), JSON.stringify({ '<im_start>': 40, '<im_end>': 41, '[PAD]': 42 }));
    fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), '{}');
    const opened: ConvertibleCheckpoint & { imStartEnd?: object } = openMmpretrainCheckpoint({
      llava: file('llava-v1.pth'),
      vision: file('clip-224.pth'),
      preset: 'v1',
      visionHeads: 2,
      textHeads: 3,
      tokenizer: dir,
    });
    assert.deepEqual(opened.imStartEnd, { startId: 40, endId: 41 });
    assert.deepEqual(opened.tokenizerFiles.map((f) => path.basename(f)).sort(), ['added_tokens.json', 'tokenizer_config.json']);

    fs.writeFileSync(path.join(dir, 'added_tokens.json'), JSON.stringify({ '<im_start>': 43, '<im_end>': 44 }));
    assert.throws(
      () => openMmpretrainCheckpoint({ llava: file('llava-v1.pth'), vision: file('clip-224.pth'), preset: 'v1', visionHeads: 2, textHeads: 3, tokenizer: dir }),
      /<im_start>\/<im_end> id 43 is outside the 43-row embeddings/,
    );
  });

  it('takes the vision tower from a full-model save (model.vision_tower.*) without a separate CLIP file', () => {
    const full = [...llavaLanguage(40, 2), ...clipVision('model.vision_tower.', 336)];
    torchSave(file('full.pth'), full);
    const { weights, ignored } = openMmpretrainCheckpoint({ llava: file('full.pth'), preset: 'v1.5', visionHeads: 2, textHeads: 3 });
    assert.deepEqual(ignored, []);
    assert.deepEqual(
      weights.get('vision_tower.vision_model.encoder.layers.0.self_attn.out_proj.weight')!.read(),
      byName(full, 'model.vision_tower.layers.0.attn.proj.weight').data,
    );
  });

  it('explains mismatches between the checkpoints and the preset', () => {
    assert.throws(
      () => openMmpretrainCheckpoint({ llava: file('llava-v1.5.pth'), preset: 'v1.5', textHeads: 3 }),
      /no vision tower: .*pass the CLIP ViT checkpoint/,
    );
    assert.throws(
      () => openMmpretrainCheckpoint({ llava: file('llava-v1.5.pth'), vision: file('clip-224.pth'), preset: 'v1.5', visionHeads: 2, textHeads: 3 }),
      /position embeddings are for 224 px images, but preset 'v1\.5' uses 336 px/,
    );
    assert.throws(
      () => openMmpretrainCheckpoint({ llava: file('llava-v1.5.pth'), vision: file('clip-224.pth'), preset: 'v1', visionHeads: 2, textHeads: 3 }),
      /uses a 1-layer projector \(mm_proj_depth\), but the checkpoint's mm_projector has 2/,
    );
    assert.throws(
      () => openMmpretrainCheckpoint({ llava: file('llava-v1.5.pth'), vision: file('clip-336.pth'), preset: 'v2' }),
      /unknown mmpretrain LLaVA preset 'v2'/,
    );
    assert.throws(
      () => openMmpretrainCheckpoint({ llava: file('llava-v1.5.pth'), vision: file('clip-336.pth'), preset: 'v1.5' }),
      /cannot split vision hidden size 16 into 64-wide heads; pass visionHeads/,
    );
    torchSave(file('scaled.pth'), clipVision('', 336, [tensor('layers.0.attn.gamma1.weight', [D])]));
    assert.throws(
      () => openMmpretrainCheckpoint({ llava: file('llava-v1.5.pth'), vision: file('scaled.pth'), preset: 'v1.5', visionHeads: 2, textHeads: 3 }),
      /unexpected vision tensor 'layers\.0\.attn\.gamma1\.weight'/,
    );
    assert.throws(
      () => openMmpretrainCheckpoint({ llava: file('clip-336.pth'), vision: file('clip-336.pth'), preset: 'v1.5', visionHeads: 2 }),
      /no model\.lang_encoder\.model\.embed_tokens\.weight/,
    );
  });
});
