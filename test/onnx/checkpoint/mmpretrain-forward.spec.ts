// The mapped mmpretrain weights must compute what mmpretrain computes: a float64 forward written from
// mmpretrain's own code (VisionTransformer with fused qkv, LlavaLlamaForCausalLM.forward_vision_tower,
// mm_projector), run on the checkpoint's original tensors, against the ONNX vision encoder the builder makes
// from the mapped weights and derived config.
import { strict as assert } from 'assert';
import * as ort from 'onnxruntime-node';
import * as path from 'path';
import { openMmpretrainCheckpoint } from '../../../lib/onnx/checkpoint/mmpretrain';
import { buildVisionEncoderGraph } from '../../../lib/onnx/vision';
import { TensorToWrite } from '../../support/checkpoint-writers/encode';
import { D, F, H, PATCH, VLAYERS, clipVision, llavaLanguage } from '../../support/checkpoint-writers/mmpretrain-tiny';
import { useTmpDir } from '../../support/checkpoint-writers/tmp-dir';
import { gelu, layerNorm, linear, maxAbsDiff, quickGelu, softmaxRow } from '../../support/reference/math';
import { torchSave } from '../../support/checkpoint-writers/torch-save';

const HEADS = 2;

type Params = (name: string) => Float64Array;

/** mmpretrain: vision_tower(images)[-1][:, 1:] (final_norm=False), then lang_encoder.model.mm_projector. */
function mmpretrainImageEmbeds(p: Params, vp: string, pixels: Float32Array, size: number, depth: 1 | 2): Float64Array {
  const grid = size / PATCH;
  const n = grid * grid + 1;
  const conv = p(`${vp}patch_embed.projection.weight`);
  // Tokens: [cls, patch 0 … patch grid²−1] (row-major patches), plus pos_embed, then pre_norm.
  let x: Float64Array = new Float64Array(n * D);
  x.set(p(`${vp}cls_token`));
  for (let gy = 0; gy < grid; gy++) {
    for (let gx = 0; gx < grid; gx++) {
      const token = 1 + gy * grid + gx;
      for (let d = 0; d < D; d++) {
        let s = 0;
        for (let c = 0; c < 3; c++)
          for (let ky = 0; ky < PATCH; ky++)
            for (let kx = 0; kx < PATCH; kx++)
              s += conv[((d * 3 + c) * PATCH + ky) * PATCH + kx] * pixels[(c * size + gy * PATCH + ky) * size + gx * PATCH + kx];
        x[token * D + d] = s;
      }
    }
  }
  const pos = p(`${vp}pos_embed`);
  x = layerNorm(
    x.map((v, i) => v + pos[i]),
    n,
    D,
    p(`${vp}pre_norm.weight`),
    p(`${vp}pre_norm.bias`),
    1e-5,
  );
  const hd = D / HEADS;
  for (let l = 0; l < VLAYERS; l++) {
    const lp = `${vp}layers.${l}.`;
    const h = layerNorm(x, n, D, p(`${lp}ln1.weight`), p(`${lp}ln1.bias`), 1e-5);
    // MultiheadAttention: qkv(x).reshape(B, N, 3, heads, head_dim).permute(2, 0, 3, 1, 4) → q, k, v.
    const qkv = linear(h, n, D, p(`${lp}attn.qkv.weight`), 3 * D, p(`${lp}attn.qkv.bias`));
    const at = (token: number, which: number, head: number, d: number) => qkv[token * 3 * D + which * D + head * hd + d];
    const context = new Float64Array(n * D);
    for (let head = 0; head < HEADS; head++) {
      for (let i = 0; i < n; i++) {
        const scores = new Float64Array(n);
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let d = 0; d < hd; d++) s += at(i, 0, head, d) * at(j, 1, head, d);
          scores[j] = s / Math.sqrt(hd);
        }
        softmaxRow(scores);
        for (let d = 0; d < hd; d++) {
          let s = 0;
          for (let j = 0; j < n; j++) s += scores[j] * at(j, 2, head, d);
          context[i * D + head * hd + d] = s;
        }
      }
    }
    const attn = linear(context, n, D, p(`${lp}attn.proj.weight`), D, p(`${lp}attn.proj.bias`));
    x = x.map((v, i) => v + attn[i]);
    const h2 = layerNorm(x, n, D, p(`${lp}ln2.weight`), p(`${lp}ln2.bias`), 1e-5);
    const act = linear(h2, n, D, p(`${lp}ffn.layers.0.0.weight`), F, p(`${lp}ffn.layers.0.0.bias`)).map(quickGelu);
    const f2 = linear(act, n, F, p(`${lp}ffn.layers.1.weight`), D, p(`${lp}ffn.layers.1.bias`));
    x = x.map((v, i) => v + f2[i]);
  }
  const feats = x.slice(D); // [:, 1:] drops CLS
  const m = n - 1;
  const mp = 'model.lang_encoder.model.mm_projector.';
  if (depth === 1) return linear(feats, m, D, p(`${mp}weight`), H, p(`${mp}bias`));
  const hidden = linear(feats, m, D, p(`${mp}0.weight`), H, p(`${mp}0.bias`)).map(gelu);
  return linear(hidden, m, H, p(`${mp}2.weight`), H, p(`${mp}2.bias`));
}

describe('checkpoint/mmpretrain: mapped weights compute what mmpretrain computes', () => {
  const tmp = useTmpDir('mmfwd');

  const cases: Array<[string, 'v1' | 'v1.5', number, 1 | 2, string]> = [
    ['v1.5 (336 px, mlp2x_gelu projector, backbone.* keys)', 'v1.5', 336, 2, 'backbone.'],
    ['v1 (224 px, linear projector, visual.* keys)', 'v1', 224, 1, 'visual.'],
  ];
  for (const [label, preset, size, depth, prefix] of cases) {
    it(label, async () => {
      const vision = clipVision(prefix, size);
      const llava = llavaLanguage(40, depth);
      const visionFile = path.join(tmp(), `clip-${preset}.pth`);
      const llavaFile = path.join(tmp(), `llava-${preset}.pth`);
      torchSave(visionFile, vision);
      torchSave(llavaFile, llava);
      const { config, weights } = openMmpretrainCheckpoint({ llava: llavaFile, vision: visionFile, preset, visionHeads: HEADS, textHeads: 3 });

      const pixels = Float32Array.from({ length: 3 * size * size }, (_, i) => Math.sin(0.37 * i) * Math.cos(0.011 * i));
      const session = await ort.InferenceSession.create(buildVisionEncoderGraph(weights, config, { withProjector: true }).toBytes());
      const { image_features } = await session.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, size, size]) });
      await session.release();
      const tokens = (size / PATCH) ** 2;
      assert.deepEqual(image_features.dims, [1, tokens, H]);

      const original = new Map<string, TensorToWrite>([...vision, ...llava].map((t) => [t.name, t]));
      const expected = mmpretrainImageEmbeds((n) => Float64Array.from(original.get(n)!.data), prefix, pixels, size, depth);
      const maxDiff = maxAbsDiff(image_features.data as Float32Array, expected);
      const maxAbs = expected.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
      assert.ok(maxAbs > 0.1, 'the reference output is not degenerate');
      assert.ok(maxDiff < 1e-4 * Math.max(1, maxAbs), `max |ONNX − mmpretrain| = ${maxDiff} (max |value| ${maxAbs})`);
    });
  }
});
