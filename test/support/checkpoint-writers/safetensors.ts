// Writes .safetensors files (and sharded folders with model.safetensors.index.json) for tests.
import * as fs from 'fs';
import * as path from 'path';
import { TensorToWrite, encodeTensor } from './encode';

const DTYPE_NAMES = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' } as const;

export function writeSafetensors(file: string, tensors: TensorToWrite[], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const blobs: Buffer[] = [];
  let offset = 0;
  for (const t of tensors) {
    const bytes = encodeTensor(t.data, t.dtype);
    header[t.name] = { dtype: DTYPE_NAMES[t.dtype], shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    blobs.push(bytes);
    offset += bytes.length;
  }
  // The format pads the header with spaces to a multiple of 8 so the data is aligned.
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  fs.writeFileSync(file, Buffer.concat([length, Buffer.from(json, 'utf8'), ...blobs]));
}

/** Writes one shard per group, named like transformers does, plus the index; returns the index path. */
export function writeShardedSafetensors(dir: string, shards: TensorToWrite[][]): string {
  const weightMap: Record<string, string> = {};
  const pad = (n: number) => String(n).padStart(5, '0');
  shards.forEach((tensors, i) => {
    const name = `model-${pad(i + 1)}-of-${pad(shards.length)}.safetensors`;
    writeSafetensors(path.join(dir, name), tensors);
    for (const t of tensors) weightMap[t.name] = name;
  });
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  fs.writeFileSync(indexFile, JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }, null, 2));
  return indexFile;
}
