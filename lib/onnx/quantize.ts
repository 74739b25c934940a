// Symmetric block-wise weight quantization in the com.microsoft MatMulNBits layout: a Linear weight W [N, K]
// (PyTorch [out, in]) becomes B uint8 [N, ceil(K/block), block*bits/8] and scales float32 [N * blocks].
// No zero_points input is written, so ORT uses the default zero point 2^(bits-1) (8 for int4, 128 for int8):
// w ≈ (q - zp) * scale with scale = max|w| of the block / (2^(bits-1) - 1). K is zero-padded to whole blocks.

export type QuantBits = 4 | 8;
export const DEFAULT_BLOCK_SIZE = 32;

export interface BlockQuantized {
  bits: QuantBits;
  blockSize: number;
  /** N: output features. */
  rows: number;
  /** K: input features. */
  cols: number;
  blocksPerRow: number;
  packed: Uint8Array;
  scales: Float32Array;
}

export function parseQuantBits(name: string): QuantBits {
  if (name === 'int4') return 4;
  if (name === 'int8') return 8;
  throw new Error(`unknown quantization "${name}"; one of: int4, int8`);
}

export function quantizeBlockwise(w: Float32Array, rows: number, cols: number, bits: QuantBits, blockSize = DEFAULT_BLOCK_SIZE): BlockQuantized {
  if (w.length !== rows * cols) throw new Error(`quantize: ${w.length} values do not make a ${rows}×${cols} matrix`);
  if (blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) throw new Error(`quantize: block size ${blockSize} must be a power of two ≥ 16`);
  const blocksPerRow = Math.ceil(cols / blockSize);
  const blobBytes = (blockSize * bits) / 8;
  const zp = 1 << (bits - 1);
  const qmax = zp - 1;
  const packed = new Uint8Array(rows * blocksPerRow * blobBytes);
  const scales = new Float32Array(rows * blocksPerRow);
  for (let r = 0; r < rows; r++) {
    for (let b = 0; b < blocksPerRow; b++) {
      const start = r * cols + b * blockSize;
      const len = Math.min(blockSize, cols - b * blockSize);
      let absMax = 0;
      for (let i = 0; i < len; i++) absMax = Math.max(absMax, Math.abs(w[start + i]));
      const scale = absMax / qmax;
      const blk = r * blocksPerRow + b;
      scales[blk] = scale;
      const out = blk * blobBytes;
      for (let i = 0; i < blockSize; i++) {
        const q = i < len && scale > 0 ? Math.max(-qmax, Math.min(qmax, Math.round(w[start + i] / Math.fround(scale)))) + zp : zp;
        if (bits === 8) packed[out + i] = q;
        else packed[out + (i >> 1)] |= (i & 1) === 0 ? q : q << 4;
      }
    }
  }
  return { bits, blockSize, rows, cols, blocksPerRow, packed, scales };
}

/** The float32 [rows, cols] matrix MatMulNBits computes with. */
export function dequantizeBlockwise(q: BlockQuantized): Float32Array {
  const out = new Float32Array(q.rows * q.cols);
  const blobBytes = (q.blockSize * q.bits) / 8;
  const zp = 1 << (q.bits - 1);
  for (let r = 0; r < q.rows; r++) {
    for (let c = 0; c < q.cols; c++) {
      const b = Math.floor(c / q.blockSize);
      const i = c % q.blockSize;
      const blk = r * q.blocksPerRow + b;
      const byte = q.packed[blk * blobBytes + (q.bits === 8 ? i : i >> 1)];
      const v = q.bits === 8 ? byte : (i & 1) === 0 ? byte & 0x0f : byte >> 4;
      out[r * q.cols + c] = Math.fround((v - zp) * q.scales[blk]);
    }
  }
  return out;
}
