// Writes uncompressed (stored) zip files the way PyTorch's writer does: each entry's data is aligned to
// 64 bytes by padding the LOCAL header's extra field (the central directory has no such padding).
import * as fs from 'fs';
import { deflateRawSync } from 'zlib';

export interface ZipEntryToWrite {
  name: string;
  data: Buffer;
  /** Deflate this entry instead of storing it (PyTorch never does; tests the reader's other path). */
  deflate?: boolean;
}

const ALIGNMENT = 64;
const PADDING_EXTRA_ID = 0x4246; // 'FB', the id PyTorch's writer uses for its padding field

/**
 * `zip64` writes the records that archives over 4 GiB need (as miniz does for large checkpoints): 0xFFFFFFFF
 * in the central sizes/offset with the real values in a ZIP64 extra field, plus the ZIP64 end record and locator.
 */
export function writeZip(file: string, entries: ZipEntryToWrite[], zip64 = false): void {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    const body = entry.deflate ? deflateRawSync(entry.data) : entry.data;
    const method = entry.deflate ? 8 : 0;
    const crc = crc32(entry.data);
    const headerEnd = offset + 30 + name.length + 4;
    const padding = (ALIGNMENT - (headerEnd % ALIGNMENT)) % ALIGNMENT;
    const extra = Buffer.alloc(4 + padding, 'Z');
    extra.writeUInt16LE(PADDING_EXTRA_ID, 0);
    extra.writeUInt16LE(padding, 2);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(entry.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(extra.length, 28);
    parts.push(local, name, extra, body);

    const record = Buffer.alloc(46);
    record.writeUInt32LE(0x02014b50, 0);
    record.writeUInt16LE(45, 4); // version made by
    record.writeUInt16LE(zip64 ? 45 : 20, 6); // version needed
    record.writeUInt16LE(method, 10);
    record.writeUInt32LE(crc, 16);
    record.writeUInt32LE(zip64 ? 0xffffffff : body.length, 20);
    record.writeUInt32LE(zip64 ? 0xffffffff : entry.data.length, 24);
    record.writeUInt16LE(name.length, 28);
    record.writeUInt32LE(zip64 ? 0xffffffff : offset, 42);
    let centralExtra = Buffer.alloc(0);
    if (zip64) {
      // Order fixed by the format: uncompressed size, compressed size, local header offset.
      centralExtra = Buffer.alloc(28);
      centralExtra.writeUInt16LE(1, 0);
      centralExtra.writeUInt16LE(24, 2);
      centralExtra.writeBigUInt64LE(BigInt(entry.data.length), 4);
      centralExtra.writeBigUInt64LE(BigInt(body.length), 12);
      centralExtra.writeBigUInt64LE(BigInt(offset), 20);
      record.writeUInt16LE(centralExtra.length, 30);
    }
    central.push(record, name, centralExtra);
    offset += 30 + name.length + extra.length + body.length;
  }
  const cd = Buffer.concat(central);
  const tail: Buffer[] = [];
  if (zip64) {
    const record = Buffer.alloc(56);
    record.writeUInt32LE(0x06064b50, 0);
    record.writeBigUInt64LE(44n, 4); // size of the rest of the record
    record.writeUInt16LE(45, 12);
    record.writeUInt16LE(45, 14);
    record.writeBigUInt64LE(BigInt(entries.length), 24);
    record.writeBigUInt64LE(BigInt(entries.length), 32);
    record.writeBigUInt64LE(BigInt(cd.length), 40);
    record.writeBigUInt64LE(BigInt(offset), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0);
    locator.writeBigUInt64LE(BigInt(offset + cd.length), 8);
    locator.writeUInt32LE(1, 16); // total number of disks
    tail.push(record, locator);
  }
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(zip64 ? 0xffff : entries.length, 8);
  end.writeUInt16LE(zip64 ? 0xffff : entries.length, 10);
  end.writeUInt32LE(zip64 ? 0xffffffff : cd.length, 12);
  end.writeUInt32LE(zip64 ? 0xffffffff : offset, 16);
  fs.writeFileSync(file, Buffer.concat([...parts, cd, ...tail, end]));
}

let crcTable: Uint32Array | undefined;
function crc32(data: Buffer): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (const byte of data) c = crcTable[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
