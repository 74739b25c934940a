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

/** Converts little-endian raw bytes of `dtype` to float32 (a copy, never a view on `bytes`). */
export function toFloat32(bytes: Buffer, dtype: WeightDType): Float32Array {
  const count = bytes.length / DTYPE_BYTES[dtype];
  if (!Number.isInteger(count)) {
    throw new Error(`${bytes.length} bytes is not a whole number of ${dtype} values`);
  }
  // An aligned copy lets typed-array views read the values (checkpoints and this host are little-endian).
  const aligned = new Uint8Array(bytes.length);
  aligned.set(bytes);
  if (dtype === 'float32') return new Float32Array(aligned.buffer);
  const halves = new Uint16Array(aligned.buffer);
  const out = new Float32Array(count);
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
