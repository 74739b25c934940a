// An independent float64 reference of the whole LLaVA pipeline for tiny models: PIL-equivalent preprocessing,
// vision tower, projector, embedding merge and greedy decoding with a KV cache.
import sharp from 'sharp';
import type { PreprocessOptions } from '../../lib/pipeline/types';
import { pilReference } from './pil-resize';
import { emptyRefCache, referenceDecoder, referenceEmbed, referenceProjector, referenceVision, RefTensor } from './reference';
import type { TinyModel } from './tiny-model';

/** CHW pixels, normalised in float64, from PIL's resampling of sharp's (exact) decode. */
export async function referencePixels(bytes: Uint8Array, o: PreprocessOptions): Promise<Float64Array> {
  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const fill = o.mean.map((m) => Math.trunc(m * 255));
  const img = pilReference({ data, width: info.width, height: info.height, channels: 3 }, o.mode, o.size, fill, {
    shortestEdge: o.shortestEdge,
    filter: o.resample,
  });
  const plane = o.size * o.size;
  const out = new Float64Array(3 * plane);
  const rescale = o.rescale ?? 1 / 255;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) out[c * plane + i] = (img.data[i * 3 + c] * rescale - o.mean[c]) / o.std[c];
  }
  return out;
}

export function referenceImageEmbeds(model: TinyModel, pixels: Float64Array): RefTensor {
  return referenceProjector(model.weights, model.config, referenceVision(model.weights, model.config, pixels, 1));
}

function argmax(row: Float64Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** Greedy generation from prompt ids whose image rows take `image`'s rows; returns the generated ids. */
export function referenceGreedy(
  model: Pick<TinyModel, 'config' | 'weights'>,
  ids: number[],
  imagePositions: number[],
  image: RefTensor | null,
  maxNewTokens: number,
  eosIds: number[] = [],
): number[] {
  const c = model.config;
  const h = c.text_config.hidden_size;
  const embeds = referenceEmbed(
    model.weights,
    c,
    ids.map((id, i) => (imagePositions.includes(i) ? 0 : id)),
  );
  imagePositions.forEach((pos, r) => embeds.data.set((image as RefTensor).data.subarray(r * h, (r + 1) * h), pos * h));
  let out = referenceDecoder(model.weights, c, {
    embeds,
    attentionMask: ids.map(() => 1),
    positionIds: ids.map((_, i) => i),
    past: emptyRefCache(c, 1),
  });
  const generated: number[] = [];
  let length = ids.length;
  for (;;) {
    const vocab = out.logits.dims[2];
    const last = out.logits.data.subarray((out.logits.dims[1] - 1) * vocab, out.logits.dims[1] * vocab);
    const next = argmax(last);
    if (eosIds.includes(next)) break;
    generated.push(next);
    if (generated.length >= maxNewTokens) break;
    out = referenceDecoder(model.weights, c, {
      embeds: referenceEmbed(model.weights, c, [next]),
      attentionMask: new Array(length + 1).fill(1),
      positionIds: [length],
      past: out.present,
    });
    length++;
  }
  return generated;
}
