// A small JPEG of the picture a model was given, for looking at (the nodes' editor preview): the preprocessed
// pixels turned back into colours (after the resize, crop, pad or squash the model's preset asked for), or the
// encoded image a remote engine is sent. Made in memory, never written anywhere.
import sharp, { type Sharp } from 'sharp';
import { isEncodedImageValue } from './image-value';
import { isPixelsValue, PixelsValue } from '../pipeline/image-values';
import type { PreprocessOptions } from '../pipeline/types';

export const THUMBNAIL_MAX_SIDE = 160;
const JPEG_QUALITY = 80;

/** How the pixels were normalised: (v·rescale − mean)/std per channel (the model's preprocess options). */
export type PixelScale = Pick<PreprocessOptions, 'mean' | 'std' | 'rescale'>;

export interface Thumbnail {
  jpeg: Buffer;
  width: number;
  height: number;
}

/** Normalised CHW float32 pixels → 8-bit interleaved RGB. */
function denormalise(pixels: PixelsValue, scale: PixelScale): { rgb: Buffer; width: number; height: number } {
  const [, channels, height, width] = pixels.dims;
  const plane = width * height;
  if (channels !== 3 || pixels.data.length !== 3 * plane * 4) {
    throw new Error(`pixels of dims [${pixels.dims.join(', ')}] and ${pixels.data.length} bytes are not one RGB image`);
  }
  // A Buffer cut from a pool may start off a 4-byte boundary: read those through a copy.
  const data = pixels.data.byteOffset % 4 === 0 ? pixels.data : Buffer.from(pixels.data);
  const values = new Float32Array(data.buffer, data.byteOffset, 3 * plane);
  const rescale = scale.rescale ?? 1 / 255;
  const rgb = Buffer.alloc(3 * plane);
  for (let c = 0; c < 3; c++) {
    const mean = scale.mean[c];
    const std = scale.std[c];
    for (let i = 0; i < plane; i++) rgb[i * 3 + c] = Math.min(255, Math.max(0, Math.round((values[c * plane + i] * std + mean) / rescale)));
  }
  return { rgb, width, height };
}

async function jpegWithin(image: Sharp, maxSide: number): Promise<Thumbnail> {
  const { data, info } = await image
    .resize({ width: maxSide, height: maxSide, fit: 'inside', withoutEnlargement: true })
    .jpeg({ quality: JPEG_QUALITY })
    .toBuffer({ resolveWithObject: true });
  return { jpeg: data, width: info.width, height: info.height };
}

/**
 * The thumbnail of an image value (longest side ≤ maxSide, never enlarged): pixels from image load (`scale` is
 * the model's normalisation, needed to undo it) or an encoded image for a remote engine. Null for any other
 * value (image features are a handle in the runtime: nothing to look at), or pixels without their scale.
 */
export async function thumbnailOf(value: unknown, scale: PixelScale | undefined, maxSide = THUMBNAIL_MAX_SIDE): Promise<Thumbnail | null> {
  if (isPixelsValue(value) && scale) {
    const { rgb, width, height } = denormalise(value, scale);
    return jpegWithin(sharp(rgb, { raw: { width, height, channels: 3 } }), maxSide);
  }
  if (isEncodedImageValue(value)) return jpegWithin(sharp(value.data).rotate(), maxSide);
  return null;
}
