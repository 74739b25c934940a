// Element types found in checkpoints and their conversion to float32.
import { endianness } from 'os';
import { WeightDType } from '../weights';

if (endianness() !== 'LE') throw new Error('checkpoint readers need a little-endian host');

/** Bytes per element of each float type a WeightSource can carry. */
export const DTYPE_BYTES: Record<WeightDType, number> = { float32: 4, float16: 2, bfloat16: 2 };

/** IEEE 754 half → float, exact for every value including subnormals, infinities and NaN. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

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
  if (dtype === 'float16') {
    const table = halfTable();
    for (let i = 0; i < count; i++) out[i] = table[halves[i]];
  } else {
    // bfloat16 is the top half of a float32, so shifting it into place is exact.
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < count; i++) bits[i] = halves[i] << 16;
  }
  return out;
}

let halfLookup: Float32Array | undefined;
function halfTable(): Float32Array {
  if (!halfLookup) {
    halfLookup = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) halfLookup[h] = halfToFloat(h);
  }
  return halfLookup;
}
