// The image as a remote engine gets it: a JPEG no larger than the server needs (it resizes to its vision tower's
// size anyway, so sending a full camera frame only costs bandwidth and base64), as a data URI.
import sharp, { type Metadata } from 'sharp';
import { performance } from 'perf_hooks';
import { sniffImageFormat } from '../pipeline/image-input';
import { DEFAULT_MAX_INPUT_PIXELS } from '../pipeline/image-preprocess';

/** Longest side sent by default: LLaVA-1.6's largest tile grid is 672 px; LLaVA-1.5 uses 336. */
export const DEFAULT_REMOTE_IMAGE_SIDE = 672;
const JPEG_QUALITY = 90;

export interface RemoteImageOptions {
  /** Longest side in pixels (default 672); larger images are scaled down, smaller ones never up. */
  maxSide?: number;
  /** Decompression-bomb guard (default 100 MP). */
  maxInputPixels?: number;
}

export interface RemoteImage {
  jpeg: Buffer;
  width: number;
  height: number;
  /** False when the input was already an upright JPEG within maxSide and is sent byte for byte. */
  reencoded: boolean;
  ms: number;
}

/**
 * An upright JPEG within maxSide goes as it is (no second lossy encode, so the server sees the same pixels as a
 * local run would); anything else is decoded (EXIF orientation applied), scaled down to fit and encoded as JPEG.
 */
export async function imageForRemote(bytes: Uint8Array, options: RemoteImageOptions = {}): Promise<RemoteImage> {
  const started = performance.now();
  const maxSide = options.maxSide ?? DEFAULT_REMOTE_IMAGE_SIDE;
  if (!Number.isInteger(maxSide) || maxSide < 16) throw new Error(`the image's longest side must be an integer of at least 16 px, got ${maxSide}`);
  const limitInputPixels = options.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS;
  const input = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels }).metadata();
  } catch (err) {
    throw new Error(`not a decodable image: ${(err as Error).message.split('\n')[0]}`);
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (width * height > limitInputPixels) throw new Error(`the image has ${width * height} pixels, over the limit of ${limitInputPixels}`);
  const upright = (meta.orientation ?? 1) === 1;
  if (sniffImageFormat(input) === 'jpeg' && upright && Math.max(width, height) <= maxSide) {
    return { jpeg: input, width, height, reencoded: false, ms: performance.now() - started };
  }
  try {
    const { data, info } = await sharp(input, { limitInputPixels })
      .rotate()
      .resize({ width: maxSide, height: maxSide, fit: 'inside', withoutEnlargement: true })
      .flatten({ background: '#000000' })
      .jpeg({ quality: JPEG_QUALITY })
      .toBuffer({ resolveWithObject: true });
    return { jpeg: data, width: info.width, height: info.height, reencoded: true, ms: performance.now() - started };
  } catch (err) {
    throw new Error(`not a decodable image: ${(err as Error).message.split('\n')[0]}`);
  }
}

export function jpegDataUri(jpeg: Uint8Array): string {
  return `data:image/jpeg;base64,${Buffer.from(jpeg.buffer, jpeg.byteOffset, jpeg.byteLength).toString('base64')}`;
}
