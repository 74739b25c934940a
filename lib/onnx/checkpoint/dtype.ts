// Element types found in checkpoints and their conversion to float32.
import { endianness } from 'os';
import { bfloat16ArrayToFloat, halfArrayToFloat } from '../../util/float16';
import { WeightDType } from '../weights';

if (endianness() !== 'LE') throw new Error('checkpoint readers need a little-endian host');

/** Bytes per element of each float type a WeightSource can carry. */
export const DTYPE_BYTES: Record<WeightDType, number> = { float32: 4, float16: 2, bfloat16: 2 };

/**
 * Reads `count` little-endian values of `dtype` and returns them as float32. `fill` writes the raw bytes into
 * the array it is given, so float32 data lands in the result without a copy and half types need one buffer.
 */
export function readFloats(count: number, dtype: WeightDType, fill: (target: Uint8Array) => void): Float32Array {
  const out = new Float32Array(count);
  if (dtype === 'float32') {
    fill(new Uint8Array(out.buffer));
    return out;
  }
  const halves = new Uint16Array(count);
  fill(new Uint8Array(halves.buffer));
  return dtype === 'float16' ? halfArrayToFloat(halves, out) : bfloat16ArrayToFloat(halves, out);
}
