// Lazy reader for .safetensors files and sharded checkpoints (model.safetensors.index.json).
// Format: an 8-byte little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {…}}, then the raw little-endian data;
// offsets count from the first byte after the header. Only the header is read when opening; each tensor's
// bytes are read when its read() is called.
import { WeightDType, WeightSource, WeightTensor } from '../weights';
import { DTYPE_BYTES, readFloats } from './dtype';
import { fileSize, readInto, readRange } from './file-range';
import { ShardSource, openShardIndex } from './sharded';
import { TensorTable, elementCount, fmtShape } from './source';

const FLOAT_DTYPES: Record<string, WeightDType> = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' };
/** Non-float dtypes the format defines; such tensors (e.g. int64 position ids) are listed in `skipped`. */
const OTHER_DTYPES = new Set(['F64', 'I64', 'I32', 'I16', 'I8', 'U64', 'U32', 'U16', 'U8', 'BOOL', 'F8_E4M3', 'F8_E5M2']);
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** One .safetensors file as a WeightSource; float tensors only, the others are named in `skipped`. */
export class SafetensorsFile implements WeightSource {
  readonly skipped: string[] = [];
  readonly metadata: Record<string, string>;
  private readonly table = new TensorTable();

  constructor(readonly file: string) {
    const size = fileSize(file);
    if (size < 8) throw new Error(`${file}: too short to be a safetensors file (${size} bytes)`);
    const headerLength = Number(readRange(file, 0, 8).readBigUInt64LE(0));
    if (headerLength < 2 || headerLength > MAX_HEADER_BYTES || 8 + headerLength > size) {
      throw new Error(`${file}: not a safetensors file (header length ${headerLength}, file size ${size})`);
    }
    const header = parseHeader(file, readRange(file, 8, headerLength));
    this.metadata = (header.__metadata__ as Record<string, string> | undefined) ?? {};
    const dataStart = 8 + headerLength;
    for (const [name, raw] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const entry = checkEntry(file, name, raw, size - dataStart);
      const dtype = FLOAT_DTYPES[entry.dtype];
      if (!dtype) {
        this.skipped.push(name);
        continue;
      }
      const [begin] = entry.data_offsets;
      this.table.add({
        name,
        shape: entry.shape,
        dtype,
        read: () => readFloats(elementCount(entry.shape), dtype, (target) => readInto(file, dataStart + begin, target)),
      });
    }
  }

  names(): string[] {
    return this.table.names();
  }

  get(name: string): WeightTensor | undefined {
    return this.table.get(name);
  }
}

export function openSafetensors(file: string): SafetensorsFile {
  return new SafetensorsFile(file);
}

/** A sharded checkpoint: `indexFile` is a model.safetensors.index.json naming the shard of each tensor. */
export function openSafetensorsIndex(indexFile: string): ShardSource {
  return openShardIndex(indexFile, openSafetensors);
}

function parseHeader(file: string, bytes: Buffer): Record<string, unknown> {
  let header: unknown;
  try {
    header = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new Error(`${file}: safetensors header is not valid JSON (${(e as Error).message})`);
  }
  if (!header || typeof header !== 'object' || Array.isArray(header)) {
    throw new Error(`${file}: safetensors header is not a JSON object`);
  }
  return header as Record<string, unknown>;
}

function checkEntry(file: string, name: string, raw: unknown, dataBytes: number): HeaderEntry {
  const entry = raw as HeaderEntry;
  const where = `${file}: tensor '${name}'`;
  if (!entry || typeof entry !== 'object') throw new Error(`${where} has no header entry object`);
  if (!(entry.dtype in FLOAT_DTYPES) && !OTHER_DTYPES.has(entry.dtype)) {
    throw new Error(`${where} has unknown dtype '${entry.dtype}'`);
  }
  if (!Array.isArray(entry.shape) || !entry.shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new Error(`${where} has an invalid shape ${JSON.stringify(entry.shape)}`);
  }
  const offsets = entry.data_offsets;
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) {
    throw new Error(`${where} has invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets;
  if (end < begin || end > dataBytes) {
    throw new Error(`${where}: data_offsets [${begin}, ${end}] fall outside the ${dataBytes} data bytes`);
  }
  const dtype = FLOAT_DTYPES[entry.dtype];
  if (dtype && end - begin !== elementCount(entry.shape) * DTYPE_BYTES[dtype]) {
    throw new Error(`${where}: ${end - begin} bytes do not hold ${entry.dtype} ${fmtShape(entry.shape)}`);
  }
  return entry;
}
