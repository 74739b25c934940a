// Float32 → checkpoint element encodings used by the test checkpoint writers (round to nearest even).
import { floatToHalf } from '../../../lib/util/float16';
import { WeightDType } from '../../../lib/onnx/weights';

/** A named tensor to write: values as float32, stored as `dtype`. */
export interface TensorToWrite {
  name: string;
  shape: number[];
  dtype: WeightDType;
  data: Float32Array;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function floatToBfloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  if (Number.isNaN(value)) return (x >>> 16) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Little-endian bytes of `data` stored as `dtype`. */
export function encodeTensor(data: Float32Array, dtype: WeightDType): Buffer {
  if (dtype === 'float32') return Buffer.from(new Float32Array(data).buffer);
  const out = Buffer.alloc(data.length * 2);
  const encode = dtype === 'float16' ? floatToHalf : floatToBfloat16Bits;
  data.forEach((v, i) => out.writeUInt16LE(encode(v), i * 2));
  return out;
}

/** Deterministic pseudo-random values (a tiny LCG), so tests need no stored data. */
export function seededValues(count: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(count);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}
