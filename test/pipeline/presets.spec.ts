import * as fs from 'fs';
import * as path from 'path';
import { strict as assert } from 'assert';
import { CLIP_MEAN, CLIP_STD } from '../../lib/model/config';
import { getPreset, mergePreset, PRESET_NAMES } from '../../lib/pipeline/presets';
import { isTemplateName } from '../../lib/pipeline/templates';

describe('presets', () => {
  it('has the seed configs and llava-1.5-hf', () => {
    assert.deepEqual([...PRESET_NAMES], ['llava-7b-v1_caption', 'llava-7b-v1.5_caption', 'llava-7b-v1.5_vqa', 'llava-1.5-hf']);
  });

  it('mmpretrain presets: squash at 224/336, no-BOS tokenization, the configs’ generation settings', () => {
    const v1 = getPreset('llava-7b-v1_caption');
    assert.deepEqual([v1.preprocess.mode, v1.preprocess.size, v1.tokenization, v1.imStartEnd], ['squash', 224, 'mmpretrain', true]);
    assert.deepEqual(v1.generation, { maxNewTokens: 50 });
    assert.deepEqual(v1.prompt, { kind: 'template', template: 'mmpretrain_v1_caption' });

    const caption = getPreset('llava-7b-v1.5_caption');
    assert.deepEqual([caption.preprocess.mode, caption.preprocess.size, caption.imStartEnd], ['squash', 336, false]);
    assert.deepEqual(caption.generation, { maxNewTokens: 50, numBeams: 3, lengthPenalty: -1.0 });

    const vqa = getPreset('llava-7b-v1.5_vqa');
    assert.deepEqual(vqa.generation, { maxNewTokens: 100 });
    assert.deepEqual(vqa.prompt, { kind: 'template', template: 'mmpretrain_v1.5_vqa' });
  });

  it("mmpretrain's 0–255 mean/std are the CLIP mean/std ×255", () => {
    const mm = { mean: [122.770938, 116.7460125, 104.09373615], std: [68.5005327, 66.6321579, 70.32316305] };
    CLIP_MEAN.forEach((m, i) => assert.ok(Math.abs(m * 255 - mm.mean[i]) < 1e-4));
    CLIP_STD.forEach((s, i) => assert.ok(Math.abs(s * 255 - mm.std[i]) < 1e-4));
  });

  it("llava-1.5-hf: the folder's own image processor, chat template, hf tokenization, greedy", () => {
    const hf = getPreset('llava-1.5-hf');
    assert.deepEqual(hf.preprocess, {});
    assert.equal(hf.tokenization, 'hf');
    assert.deepEqual(hf.prompt, { kind: 'chat-template' });
    assert.equal(hf.generation.numBeams, undefined);
    assert.equal(hf.generation.doSample, undefined);
  });

  it('every template a preset names exists', () => {
    for (const name of PRESET_NAMES) {
      const p = getPreset(name).prompt;
      if (p.kind === 'template') assert.ok(isTemplateName(p.template), `${name}: ${p.template}`);
    }
  });

  it('overrides merge field by field, ignore undefined, and never touch the preset', () => {
    const base = getPreset('llava-7b-v1.5_caption');
    const merged = mergePreset(base, {
      preprocess: { mode: 'pad' },
      generation: { maxNewTokens: 20, numBeams: undefined },
      tokenization: 'original',
      prompt: { kind: 'custom', template: 'USER: <image>\n{{question}} ASSISTANT:' },
    });
    assert.deepEqual(merged.preprocess, { ...base.preprocess, mode: 'pad' });
    assert.deepEqual(merged.generation, { maxNewTokens: 20, numBeams: 3, lengthPenalty: -1.0 });
    assert.equal(merged.tokenization, 'original');
    assert.equal(merged.prompt.kind, 'custom');
    merged.preprocess.mean![0] = 0;
    assert.equal(getPreset('llava-7b-v1.5_caption').preprocess.mean![0], CLIP_MEAN[0]);
    assert.equal(base.preprocess.mode, 'squash');
  });

  it("offers exactly the known presets in the model node's menu, and names them for an unknown one", () => {
    const html = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'nodes', 'llava-model.html'), 'utf8');
    const select = html.match(/<select id="node-config-input-preset"[^>]*>([\s\S]*?)<\/select>/);
    assert.ok(select, 'the model node has a preset menu');
    const offered = [...select[1].matchAll(/<option value="([^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual(offered.filter((v) => v !== 'auto').sort(), [...PRESET_NAMES].sort());
    assert.throws(() => getPreset('llava-13b'), /unknown preset "llava-13b"; known: llava-7b-v1_caption/);
  });
});
