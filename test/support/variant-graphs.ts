// Weight-variant files as exports ship them, written with our graph layer at test time: fp16 graphs whose
// inputs/outputs stay float32 (transformers.js quantize.py, keep_io_types) or are float16 themselves.
import type { LlavaConfig } from '../../lib/model/config';
import { EMBED_IO, VISION_IO } from '../../lib/model/graph-io';
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
  g.output(io === 'float16' ? out : g.op('Cast', [out], { to: FLOAT }), io, ['batch_size', visionTokenCount(c), c.text_config.hidden_size], VISION_IO.imageFeatures);
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
