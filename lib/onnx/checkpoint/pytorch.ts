// Reads PyTorch checkpoints (torch.save zip format, PyTorch ≥ 1.6) without Python and without running code.
// Layout: a zip whose entries sit under one folder `<name>/`: `data.pkl` (the pickled object, with tensors
// as _rebuild_tensor_v2 calls on persistent ids ('storage', torch.<T>Storage, key, location, numel)),
// `data/<key>` (each storage's raw little-endian bytes), `version`, and in newer versions `byteorder`.
// Only tensor metadata is read when opening; each tensor's bytes are read when its read() is called.
import { WeightDType, WeightSource, WeightTensor } from '../weights';
import { DTYPE_BYTES, readFloats } from './dtype';
import { readRange } from './file-range';
import { AllowedGlobal, PickleValue, unpickle } from './pickle';
import { TensorTable, elementCount, fmtShape } from './source';
import { ZipArchive } from './zip';

/** Storage classes torch.save names; the float ones become weights, the others are listed in `skipped`. */
const STORAGE_TYPES: Record<string, WeightDType | 'other'> = {
  FloatStorage: 'float32',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  DoubleStorage: 'other',
  LongStorage: 'other',
  IntStorage: 'other',
  ShortStorage: 'other',
  CharStorage: 'other',
  ByteStorage: 'other',
  BoolStorage: 'other',
};

class StorageType {
  constructor(readonly name: string, readonly dtype: WeightDType | 'other') {}
}

class StorageRef {
  constructor(readonly type: StorageType, readonly entry: string, readonly numel: number) {}
}

/** A tensor as the pickle describes it: a view (offset, shape, stride) on a storage. */
class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

/** Keys under which training frameworks nest the weights (mmengine/mmpretrain: 'state_dict'). */
const NESTED_STATE_DICT_KEYS = ['state_dict', 'model', 'module'];

export class PytorchCheckpoint implements WeightSource {
  /** Tensors that are not float32/float16/bfloat16 (e.g. int64 buffers); not offered as weights. */
  readonly skipped: string[] = [];
  private readonly table = new TensorTable();
  private readonly archive: ZipArchive;

  constructor(readonly file: string) {
    const magic = readRange(file, 0, 4);
    if (magic.readUInt32LE(0) !== 0x04034b50) {
      throw new Error(
        `${file}: not a zip-format PyTorch checkpoint (the legacy pre-1.6 torch.save format is not supported; ` +
          're-save it with a current torch.save, or convert it to safetensors)',
      );
    }
    this.archive = new ZipArchive(file);
    const prefix = findArchivePrefix(this.archive);
    const byteOrder = `${prefix}byteorder`;
    if (this.archive.has(byteOrder) && this.archive.read(byteOrder).toString('utf8').trim() !== 'little') {
      throw new Error(`${file}: checkpoint was saved big-endian, which is not supported`);
    }
    const root = unpickle(this.archive.read(`${prefix}data.pkl`), {
      globals: torchGlobals(),
      persistentLoad: (pid) => this.loadStorage(pid, prefix),
      source: `${file} (${prefix}data.pkl)`,
    });
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

  private loadStorage(pid: PickleValue, prefix: string): StorageRef {
    if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage') {
      throw new Error(`${this.file}: unexpected persistent id ${describe(pid)}; expected ('storage', type, key, location, numel)`);
    }
    const [, type, key, , numel] = pid;
    if (!(type instanceof StorageType) || typeof key !== 'string' || !Number.isInteger(numel)) {
      throw new Error(`${this.file}: malformed storage id ${describe(pid)}`);
    }
    const entry = `${prefix}data/${key}`;
    if (!this.archive.has(entry)) throw new Error(`${this.file}: storage '${key}' has no zip entry ${entry}`);
    if (type.dtype !== 'other' && this.archive.size(entry) < (numel as number) * DTYPE_BYTES[type.dtype]) {
      throw new Error(`${this.file}: storage '${key}' is shorter than its ${numel} ${type.name} elements`);
    }
    return new StorageRef(type, entry, numel as number);
  }

  private addTensor(name: string, ref: TensorRef): void {
    const dtype = ref.storage.type.dtype;
    if (dtype === 'other') {
      this.skipped.push(name);
      return;
    }
    if (!isContiguous(ref.shape, ref.stride)) {
      throw new Error(
        `${this.file}: tensor '${name}' is not contiguous (shape ${fmtShape(ref.shape)}, stride ${fmtShape(ref.stride)}); ` +
          'save it after .contiguous()',
      );
    }
    const count = elementCount(ref.shape);
    if (ref.offset + count > ref.storage.numel) {
      throw new Error(`${this.file}: tensor '${name}' ${fmtShape(ref.shape)} at offset ${ref.offset} overruns its storage`);
    }
    const bytes = DTYPE_BYTES[dtype];
    this.table.add({
      name,
      shape: ref.shape,
      dtype,
      read: () => readFloats(count, dtype, (target) => this.archive.readInto(ref.storage.entry, ref.offset * bytes, target)),
    });
  }
}

export function openPytorchCheckpoint(file: string): PytorchCheckpoint {
  return new PytorchCheckpoint(file);
}

/** The `<name>/` folder that holds data.pkl (torch uses 'archive/' today, the file's stem in older versions). */
function findArchivePrefix(archive: ZipArchive): string {
  const pickles = archive.names().filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pickles.length !== 1) {
    throw new Error(`${archive.file}: not a PyTorch checkpoint (expected one <name>/data.pkl entry, found ${pickles.length})`);
  }
  return pickles[0].slice(0, -'data.pkl'.length);
}

/** The name → value pairs of the state dict: the top-level dict, or a dict nested under a known key. */
function stateDictEntries(file: string, root: PickleValue): Map<string, PickleValue> {
  if (!(root instanceof Map)) throw new Error(`${file}: checkpoint does not hold a dict (found ${describe(root)})`);
  const hasTensors = (m: Map<PickleValue, PickleValue>) => [...m.values()].some((v) => v instanceof TensorRef);
  if (!hasTensors(root)) {
    for (const key of NESTED_STATE_DICT_KEYS) {
      const nested = root.get(key);
      if (nested instanceof Map && hasTensors(nested)) return stringKeys(file, nested);
    }
    throw new Error(`${file}: no tensors found at the top level or under ${NESTED_STATE_DICT_KEYS.join('/')}`);
  }
  return stringKeys(file, root);
}

function stringKeys(file: string, dict: Map<PickleValue, PickleValue>): Map<string, PickleValue> {
  for (const key of dict.keys()) {
    if (typeof key !== 'string') throw new Error(`${file}: state dict has a non-string key ${describe(key)}`);
  }
  return dict as Map<string, PickleValue>;
}

function isContiguous(shape: number[], stride: number[]): boolean {
  if (shape.length !== stride.length) return false;
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i];
  }
  return true;
}

const isIntArray = (v: PickleValue): v is number[] => Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 0);

/** The allow-list: the only globals a checkpoint may name. */
function torchGlobals(): Map<string, AllowedGlobal> {
  const globals = new Map<string, AllowedGlobal>();
  globals.set('collections.OrderedDict', {
    kind: 'callable',
    call: (args) => {
      if (args.length !== 0) throw new Error('OrderedDict is only supported with no arguments');
      return new Map();
    },
    // torch attaches `_metadata` (module versions) as instance state; it carries no weights.
    build: () => undefined,
  });
  globals.set('torch._utils._rebuild_tensor_v2', {
    kind: 'callable',
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    call: ([storage, offset, size, stride]) => {
      if (!(storage instanceof StorageRef) || !Number.isInteger(offset) || !isIntArray(size) || !isIntArray(stride)) {
        throw new Error(`_rebuild_tensor_v2 called with unexpected arguments`);
      }
      return new TensorRef(storage, offset as number, size, stride);
    },
  });
  const rebuildParameter: AllowedGlobal = {
    kind: 'callable',
    // (data, requires_grad, backward_hooks[, state]): a Parameter is its tensor for our purposes.
    call: ([data]) => {
      if (!(data instanceof TensorRef)) throw new Error('_rebuild_parameter called without a tensor');
      return data;
    },
  };
  globals.set('torch._utils._rebuild_parameter', rebuildParameter);
  globals.set('torch._utils._rebuild_parameter_with_state', rebuildParameter);
  for (const [name, dtype] of Object.entries(STORAGE_TYPES)) {
    globals.set(`torch.${name}`, { kind: 'value', value: new StorageType(name, dtype) });
  }
  return globals;
}

function describe(v: PickleValue): string {
  if (v instanceof Map) return 'a dict';
  if (Array.isArray(v)) return `(${v.map(describe).join(', ')})`;
  if (v instanceof StorageType) return `torch.${v.name}`;
  return typeof v === 'string' ? `'${v}'` : String(v);
}
