// Weight-variant files as exports ship them, written with our graph layer at test time: fp16 graphs whose
// inputs/outputs stay float32 (transformers.js quantize.py, keep_io_types) or are float16 themselves.
import type { LlavaConfig } from '../../lib/model/config';
import { EMBED_IO, PROJECTOR_IO, VISION_IO } from '../../lib/model/graph-io';
import { BuildContext } from '../../lib/onnx/blocks';
import { addVisionTower, visionTokenCount } from '../../lib/onnx/vision';
import { Graph, tensor } from '../../lib/onnx/graph';
import { addProjector } from '../../lib/onnx/projector';
import { TEXT_PREFIX } from '../../lib/onnx/weight-names';
import type { WeightSource } from '../../lib/onnx/weights';
import { floatArrayToHalf } from '../../lib/util/float16';

const FLOAT = 1;
const FLOAT16 = 10;

/** Float tensors pass through float16 here, as in an fp16 graph: float32 I/O casts at both ends, float16 I/O does not. */
export type Fp16Io = 'float32' | 'float16';

/** vision_encoder_fp16 (projector inside): the pixels and the features are float16 values, the tower runs as built. */
export function fp16VisionGraph(weights: WeightSource, c: LlavaConfig, io: Fp16Io): Graph {
  const g = new Graph('vision_encoder');
  const v = c.vision_config;
  const ctx: BuildContext = { g, weights };
  const input = g.input(VISION_IO.pixelValues, io, ['batch_size', 3, v.image_size, v.image_size]);
  const half = io === 'float16' ? input : g.op('Cast', [input], { to: FLOAT16 });
  const features = addProjector(ctx, c, addVisionTower(ctx, c, g.op('Cast', [half], { to: FLOAT })));
  const out = g.op('Cast', [features], { to: FLOAT16 });
  g.output(
    io === 'float16' ? out : g.op('Cast', [out], { to: FLOAT }),
    io,
    ['batch_size', visionTokenCount(c), c.text_config.hidden_size],
    VISION_IO.imageFeatures,
  );
  return g;
}

/** embed_tokens_fp16: the table is stored as float16; inputs_embeds is float16 or cast back to float32. */
export function fp16EmbedGraph(weights: WeightSource, c: LlavaConfig, io: Fp16Io): Graph {
  const t = c.text_config;
  const g = new Graph('embed_tokens');
  const ids = g.input(EMBED_IO.inputIds, 'int64', ['batch_size', 'sequence_length']);
  const name = `${TEXT_PREFIX}.embed_tokens.weight`;
  const table = g.initializer(name, tensor('float16', [t.vocab_size, t.hidden_size], floatArrayToHalf(weights.get(name)!.read())));
  const rows = g.op('Gather', [table, ids], { axis: 0 });
  g.output(io === 'float16' ? rows : g.op('Cast', [rows], { to: FLOAT }), io, ['batch_size', 'sequence_length', t.hidden_size], EMBED_IO.inputsEmbeds);
  return g;
}

/** NF4 code values (bitsandbytes / onnxruntime contrib_ops matmul_bnb4, quant_type 1). */
const NF4 = [
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
  0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
];
const BNB4_BLOCK = 64;

/** A PyTorch [N, K] weight as MatMulBnb4 stores it: NF4 codes in blocks of 64 with their absmax, and its dequantized values. */
function quantizeNf4(w: Float32Array): { packed: Uint8Array; absmax: Float32Array; dequantized: Float32Array } {
  const blocks = Math.ceil(w.length / BNB4_BLOCK);
  const absmax = new Float32Array(blocks);
  const codes = new Uint8Array(w.length);
  const dequantized = new Float32Array(w.length);
  for (let b = 0; b < blocks; b++) {
    const end = Math.min(w.length, (b + 1) * BNB4_BLOCK);
    let m = 0;
    for (let i = b * BNB4_BLOCK; i < end; i++) m = Math.max(m, Math.abs(w[i]));
    absmax[b] = m;
    for (let i = b * BNB4_BLOCK; i < end; i++) {
      const x = m === 0 ? 0 : w[i] / m;
      let best = 0;
      for (let q = 1; q < 16; q++) if (Math.abs(NF4[q] - x) < Math.abs(NF4[best] - x)) best = q;
      codes[i] = best;
      dequantized[i] = NF4[best] * absmax[b];
    }
  }
  // Two codes per byte, the first in the high nibble (the other order gives values off by ~2 in the test).
  const packed = new Uint8Array(Math.ceil(w.length / 2));
  for (let i = 0; i < w.length; i += 2) packed[i >> 1] = (codes[i] << 4) | (i + 1 < w.length ? codes[i + 1] : 0);
  return { packed, absmax, dequantized };
}

/**
 * multi_modal_projector (split layout) with its two Linears as com.microsoft MatMulBnb4 (NF4, block 64), as
 * transformers.js's quantize.py writes _bnb4 files; or, for comparison, as plain MatMuls of the dequantized weights.
 */
export function bnb4ProjectorGraph(weights: WeightSource, c: LlavaConfig, form: 'bnb4' | 'dequantized'): Graph {
  const g = new Graph('multi_modal_projector');
  const dv = c.vision_config.hidden_size;
  const h = c.text_config.hidden_size;
  const linear = (x: string, name: string, k: number, n: number): string => {
    const { packed, absmax, dequantized } = quantizeNf4(weights.get(`multi_modal_projector.${name}.weight`)!.read());
    let y: string;
    if (form === 'bnb4') {
      const b = g.initializer(`${name}.B`, tensor('uint8', [packed.length], packed));
      const s = g.initializer(`${name}.absmax`, tensor('float32', [absmax.length], absmax));
      y = g.op('MatMulBnb4', [x, b, s], { K: k, N: n, block_size: BNB4_BLOCK, quant_type: 1 }, { domain: 'com.microsoft' });
    } else {
      const t = new Float32Array(k * n);
      for (let r = 0; r < n; r++) for (let col = 0; col < k; col++) t[col * n + r] = dequantized[r * k + col];
      y = g.op('MatMul', [x, g.initializer(`${name}.W`, tensor('float32', [k, n], t))]);
    }
    return g.op('Add', [y, g.initializer(`${name}.bias`, tensor('float32', [n], weights.get(`multi_modal_projector.${name}.bias`)!.read()))]);
  };
  const x = g.input(PROJECTOR_IO.imageFeatures, 'float32', ['batch_size', 'num_image_tokens', dv]);
  const y = linear(g.op('Gelu', [linear(x, 'linear_1', dv, h)], { approximate: 'none' }), 'linear_2', h, h);
  g.output(y, 'float32', ['batch_size', 'num_image_tokens', h], PROJECTOR_IO.imageEmbeds);
  return g;
}
