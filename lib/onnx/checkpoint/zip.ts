// A minimal zip reader for PyTorch checkpoints: reads the central directory (ZIP64 included, since
// multi-GB checkpoints need it) and gives lazy access to entries. PyTorch writes entries stored
// (uncompressed), so byte ranges of an entry are read straight from the file; deflated entries (a zip
// re-packed by another tool) are inflated whole when read.
import { inflateRawSync } from 'zlib';
import { fileSize, readInto, readRange } from './file-range';

const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;
const STORED = 0;
const DEFLATED = 8;

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

export class ZipArchive {
  readonly entries = new Map<string, ZipEntry>();
  private readonly dataOffsets = new Map<string, number>();

  constructor(readonly file: string) {
    const size = fileSize(file);
    const { count, cdOffset, cdSize } = findCentralDirectory(file, size);
    if (cdOffset + cdSize > size) throw new Error(`${file}: zip central directory lies outside the file`);
    const cd = readRange(file, cdOffset, cdSize);
    let p = 0;
    for (let i = 0; i < count; i++) {
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== CENTRAL_SIGNATURE) {
        throw new Error(`${file}: zip central directory entry ${i} is damaged`);
      }
      const flags = cd.readUInt16LE(p + 8);
      const nameLength = cd.readUInt16LE(p + 28);
      const extraLength = cd.readUInt16LE(p + 30);
      const commentLength = cd.readUInt16LE(p + 32);
      const name = cd.toString('utf8', p + 46, p + 46 + nameLength);
      if (flags & 1) throw new Error(`${file}: zip entry '${name}' is encrypted`);
      const entry: ZipEntry = {
        name,
        method: cd.readUInt16LE(p + 10),
        compressedSize: cd.readUInt32LE(p + 20),
        size: cd.readUInt32LE(p + 24),
        localHeaderOffset: cd.readUInt32LE(p + 42),
      };
      applyZip64Extra(entry, cd.subarray(p + 46 + nameLength, p + 46 + nameLength + extraLength));
      this.entries.set(name, entry);
      p += 46 + nameLength + extraLength + commentLength;
    }
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  size(name: string): number {
    return this.entry(name).size;
  }

  /** The whole (decompressed) content of an entry. */
  read(name: string): Buffer {
    const entry = this.entry(name);
    const raw = readRange(this.file, this.dataOffset(entry), entry.compressedSize);
    if (entry.method === STORED) return raw;
    if (entry.method === DEFLATED) return inflateRawSync(raw);
    throw new Error(`${this.file}: zip entry '${name}' uses compression method ${entry.method}; only stored and deflate are supported`);
  }

  /** Fills `target` from `offset` inside an entry: read directly when stored, by inflating the entry when deflated. */
  readInto(name: string, offset: number, target: Uint8Array): void {
    const entry = this.entry(name);
    if (offset < 0 || offset + target.length > entry.size) {
      throw new Error(`${this.file}: bytes ${offset}..${offset + target.length} are outside zip entry '${name}' (${entry.size} bytes)`);
    }
    if (entry.method === STORED) readInto(this.file, this.dataOffset(entry) + offset, target);
    else target.set(this.read(name).subarray(offset, offset + target.length));
  }

  private entry(name: string): ZipEntry {
    const entry = this.entries.get(name);
    if (!entry) throw new Error(`${this.file}: zip has no entry '${name}'`);
    return entry;
  }

  /** Where an entry's data starts: after its local header, whose extra field may differ from the central one. */
  private dataOffset(entry: ZipEntry): number {
    let offset = this.dataOffsets.get(entry.name);
    if (offset === undefined) {
      const local = readRange(this.file, entry.localHeaderOffset, 30);
      if (local.readUInt32LE(0) !== LOCAL_SIGNATURE) {
        throw new Error(`${this.file}: zip local header of '${entry.name}' is damaged`);
      }
      offset = entry.localHeaderOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
      this.dataOffsets.set(entry.name, offset);
    }
    return offset;
  }
}

function findCentralDirectory(file: string, size: number): { count: number; cdOffset: number; cdSize: number } {
  const tailLength = Math.min(size, EOCD_SIZE + MAX_COMMENT);
  const tail = readRange(file, size - tailLength, tailLength);
  let eocd = -1;
  for (let p = tailLength - EOCD_SIZE; p >= 0; p--) {
    if (tail.readUInt32LE(p) === EOCD_SIGNATURE) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) throw new Error(`${file}: not a zip file (no end-of-central-directory record)`);
  let count = tail.readUInt16LE(eocd + 10);
  let cdSize = tail.readUInt32LE(eocd + 12);
  let cdOffset = tail.readUInt32LE(eocd + 16);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const locatorAt = size - tailLength + eocd - 20;
    const locator = locatorAt >= 0 ? readRange(file, locatorAt, 20) : undefined;
    if (!locator || locator.readUInt32LE(0) !== ZIP64_LOCATOR_SIGNATURE) {
      throw new Error(`${file}: zip needs ZIP64 records but has no ZIP64 locator`);
    }
    const record = readRange(file, toNumber(locator.readBigUInt64LE(8)), 56);
    if (record.readUInt32LE(0) !== ZIP64_EOCD_SIGNATURE) throw new Error(`${file}: ZIP64 end record is damaged`);
    count = toNumber(record.readBigUInt64LE(32));
    cdSize = toNumber(record.readBigUInt64LE(40));
    cdOffset = toNumber(record.readBigUInt64LE(48));
  }
  return { count, cdOffset, cdSize };
}

/** The ZIP64 extra field (id 1) holds, in this order, whichever of these the central record set to 0xFFFFFFFF. */
function applyZip64Extra(entry: ZipEntry, extra: Buffer): void {
  const fields = (['size', 'compressedSize', 'localHeaderOffset'] as const).filter((f) => entry[f] === 0xffffffff);
  if (fields.length === 0) return;
  for (let p = 0; p + 4 <= extra.length;) {
    const id = extra.readUInt16LE(p);
    const length = extra.readUInt16LE(p + 2);
    if (id === 1) {
      fields.forEach((f, i) => {
        if (8 * (i + 1) > length) throw new Error(`zip entry '${entry.name}' has a short ZIP64 extra field`);
        entry[f] = toNumber(extra.readBigUInt64LE(p + 4 + 8 * i));
      });
      return;
    }
    p += 4 + length;
  }
  throw new Error(`zip entry '${entry.name}' needs a ZIP64 extra field but has none`);
}

function toNumber(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`zip offset ${v} is too large`);
  return Number(v);
}
