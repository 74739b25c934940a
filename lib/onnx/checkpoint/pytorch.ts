// Reads PyTorch checkpoints without Python and without running code.
// Zip format (torch.save since PyTorch 1.6): a zip whose entries sit under one folder `<name>/`: `data.pkl`
// (the pickled object, tensors as _rebuild_tensor_v2 calls on persistent ids ('storage', torch.<T>Storage,
// key, location, numel)), `data/<key>` (each storage's raw little-endian bytes), `version`, newer `byteorder`.
// Legacy format (older torch, or _use_new_zipfile_serialization=False): see pytorch-legacy.ts.
// Only tensor metadata is read when opening; each tensor's bytes are read when its read() is called.
import { WeightSource, WeightTensor } from '../weights';
import { readFloats } from './dtype';
import { fileSize, readRange } from './file-range';
import { PickleValue, unpickle } from './pickle';
import { isLegacyTorchFile, readLegacyTorchFile } from './pytorch-legacy';
import { TensorTable, elementCount, fmtShape } from './source';
import { StorageRef, TensorRef, isContiguous, parseStoragePid, stateDictEntries, torchGlobals } from './torch-pickle';
import { ZipArchive } from './zip';

const ZIP_SIGNATURE = 0x04034b50;

export class PytorchCheckpoint implements WeightSource {
  /** Tensors that are not float32/float16/bfloat16 (e.g. int64 buffers); not offered as weights. */
  readonly skipped: string[] = [];
  readonly format: 'zip' | 'legacy';
  private readonly table = new TensorTable();

  constructor(readonly file: string) {
    const head = readRange(file, 0, Math.min(4, fileSize(file)));
    let root: PickleValue;
    if (head.length === 4 && head.readUInt32LE(0) === ZIP_SIGNATURE) {
      this.format = 'zip';
      root = readZipCheckpoint(file);
    } else if (isLegacyTorchFile(file)) {
      this.format = 'legacy';
      root = readLegacyTorchFile(file);
    } else {
      throw new Error(`${file}: not a PyTorch checkpoint (neither a torch.save zip nor the legacy torch.save format)`);
    }
    for (const [name, value] of stateDictEntries(file, root)) {
      if (value instanceof TensorRef) this.addTensor(name, value);
    }
  }

  names(): string[] {
    return this.table.names();
  }

  get(name: string): WeightTensor | undefined {
    return this.table.get(name);
  }

  private addTensor(name: string, ref: TensorRef): void {
    const dtype = ref.storage.type.dtype;
    if (dtype === 'other') {
      this.skipped.push(name);
      return;
    }
    if (!isContiguous(ref.shape, ref.stride)) {
      throw new Error(
        `${this.file}: tensor '${name}' is not contiguous (shape ${fmtShape(ref.shape)}, stride ${fmtShape(ref.stride)}); ` + 'save it after .contiguous()',
      );
    }
    const count = elementCount(ref.shape);
    if (ref.offset + count > ref.storage.numel) {
      throw new Error(`${this.file}: tensor '${name}' ${fmtShape(ref.shape)} at offset ${ref.offset} overruns its storage`);
    }
    const byteOffset = ref.offset * ref.storage.type.elementSize;
    this.table.add({
      name,
      shape: ref.shape,
      dtype,
      read: () => readFloats(count, dtype, (target) => ref.storage.readInto(byteOffset, target)),
    });
  }
}

export function openPytorchCheckpoint(file: string): PytorchCheckpoint {
  return new PytorchCheckpoint(file);
}

function readZipCheckpoint(file: string): PickleValue {
  const archive = new ZipArchive(file);
  const pickles = archive.names().filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pickles.length !== 1) {
    throw new Error(`${file}: not a PyTorch checkpoint (expected one <name>/data.pkl entry, found ${pickles.length})`);
  }
  // torch names the folder 'archive' today, after the file's stem in older versions.
  const prefix = pickles[0].slice(0, -'data.pkl'.length);
  const byteOrder = `${prefix}byteorder`;
  if (archive.has(byteOrder) && archive.read(byteOrder).toString('utf8').trim() !== 'little') {
    throw new Error(`${file}: checkpoint was saved big-endian, which is not supported`);
  }
  return unpickle(archive.read(pickles[0]), {
    globals: torchGlobals(),
    persistentLoad: (pid): StorageRef => {
      const { type, key, numel } = parseStoragePid(pid, file);
      const entry = `${prefix}data/${key}`;
      if (!archive.has(entry)) throw new Error(`${file}: storage '${key}' has no zip entry ${entry}`);
      if (archive.size(entry) < numel * type.elementSize) {
        throw new Error(`${file}: storage '${key}' is shorter than its ${numel} ${type.name} elements`);
      }
      return { type, numel, readInto: (byteOffset, target) => archive.readInto(entry, byteOffset, target) };
    },
    source: `${file} (${pickles[0]})`,
  });
}
