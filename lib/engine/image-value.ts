// The image value a flow carries when its engine is remote: the JPEG the server will get (image load makes it; clip
// encode and project pass it on; llm generate sends it). Bytes on the message, nothing held anywhere else.
import type { StageResult } from '../pipeline/image-values';
import { imageForRemote, RemoteImageOptions } from './image-for-remote';

export interface EncodedImageValue {
  type: 'encoded';
  mime: 'image/jpeg';
  data: Buffer;
  width: number;
  height: number;
}

export function isEncodedImageValue(value: unknown): value is EncodedImageValue {
  const v = value as Partial<EncodedImageValue> | null;
  return !!v && typeof v === 'object' && v.type === 'encoded' && Buffer.isBuffer(v.data);
}

/** Image bytes → the JPEG a remote engine is sent (scaled to its longest side). */
export async function encodeForRemote(bytes: Uint8Array, options: RemoteImageOptions = {}): Promise<StageResult<EncodedImageValue>> {
  const image = await imageForRemote(bytes, options);
  return { value: { type: 'encoded', mime: 'image/jpeg', data: image.jpeg, width: image.width, height: image.height }, ms: image.ms };
}
