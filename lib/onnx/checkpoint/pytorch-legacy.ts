// The legacy torch.save format (before PyTorch 1.6, or with _use_new_zipfile_serialization=False), from
// torch/serialization.py _legacy_save: five pickles back to back — the magic number 0x1950a86a20f9469cfc6c,
// the protocol version 1001, sys_info {protocol_version, little_endian, type_sizes}, the object (storages as
// persistent ids ('storage', storage_type, key, location, numel, view_metadata)), and the sorted list of
// storage keys — then, for each key in that order, its element count as int64 and its raw bytes.
import { readInto, fileSize, readRange } from './file-range';
import { PickleTruncatedError, PickleValue, unpickleAt } from './pickle';
import { StorageRef, parseStoragePid, torchGlobals } from './torch-pickle';

const MAGIC = 0x1950a86a20f9469cfc6cn;
const PROTOCOL_VERSION = 1001;
/** PROTO n, LONG1 with 10 bytes (the magic number, little-endian), STOP. */
const MAGIC_PICKLE_LENGTH = 15;

export function isLegacyTorchFile(file: string): boolean {
  if (fileSize(file) < MAGIC_PICKLE_LENGTH) return false;
  const b = readRange(file, 0, MAGIC_PICKLE_LENGTH);
  if (b[0] !== 0x80 || b[2] !== 0x8a || b[3] !== 10 || b[14] !== 0x2e) return false;
  let magic = 0n;
  for (let i = 13; i >= 4; i--) magic = (magic << 8n) | BigInt(b[i]);
  return magic === MAGIC;
}

/** The unpickled object; its storages read lazily from the data that follows the pickles. */
export function readLegacyTorchFile(file: string): PickleValue {
  const size = fileSize(file);
  // The pickles come first and are small next to the data; read a growing window until they all fit.
  for (let window = Math.min(size, 1 << 20); ; window = Math.min(size, window * 8)) {
    try {
      return parseLegacy(file, readRange(file, 0, window), size);
    } catch (e) {
      if (!(e instanceof PickleTruncatedError) || window === size) throw e;
    }
  }
}

function parseLegacy(file: string, head: Buffer, size: number): PickleValue {
  const where = `${file} (legacy torch.save)`;
  const plain = { globals: new Map(), source: where };
  let pos = MAGIC_PICKLE_LENGTH;
  const version = unpickleAt(head, pos, plain);
  if (version.value !== PROTOCOL_VERSION) throw new Error(`${where}: unsupported protocol version ${String(version.value)}`);
  const sysInfo = unpickleAt(head, version.end, plain);
  if (!(sysInfo.value instanceof Map) || sysInfo.value.get('little_endian') !== true) {
    throw new Error(`${where}: checkpoint was not saved little-endian, which is not supported`);
  }
  const storages = new Map<string, StorageRef>();
  const dataOffsets = new Map<string, number>();
  const root = unpickleAt(head, sysInfo.end, {
    globals: torchGlobals(),
    persistentLoad: (pid) => {
      const { type, key, numel, rest } = parseStoragePid(pid, where);
      if (rest[0] !== null && rest[0] !== undefined) throw new Error(`${where}: storage '${key}' is a view, which is not supported`);
      const known = storages.get(key);
      if (known) return known;
      const storage: StorageRef = {
        type,
        numel,
        readInto: (byteOffset, target) => readInto(file, dataOffsets.get(key)! + byteOffset, target),
      };
      storages.set(key, storage);
      return storage;
    },
    source: where,
  });
  const keys = unpickleAt(head, root.end, plain);
  if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === 'string')) {
    throw new Error(`${where}: the storage key list is missing`);
  }
  pos = keys.end;
  for (const key of keys.value) {
    const storage = storages.get(key);
    if (!storage) throw new Error(`${where}: storage '${key}' is listed but never used`);
    if (pos + 8 > size) throw new Error(`${where}: file ends before storage '${key}'`);
    const numel = Number(readRange(file, pos, 8).readBigInt64LE(0));
    const bytes = numel * storage.type.elementSize;
    if (numel < storage.numel || pos + 8 + bytes > size) {
      throw new Error(`${where}: storage '${key}' holds ${numel} elements (${storage.numel} expected) or runs past the end`);
    }
    dataOffsets.set(key, pos + 8);
    pos += 8 + bytes;
  }
  for (const key of storages.keys()) {
    if (!dataOffsets.has(key)) throw new Error(`${where}: storage '${key}' has no data`);
  }
  return root.value;
}
