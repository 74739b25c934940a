// What a torch.save pickle may contain, as plain data: the allow-listed globals (OrderedDict, tensor and
// parameter rebuilders, storage classes), the tensor and storage references they produce, and where in the
// unpickled object the state dict is.
import { WeightDType } from '../weights';
import { AllowedGlobal, PickleValue } from './pickle';

/** Storage classes torch.save names, with their element types and sizes. Only the float ones become weights. */
const STORAGE_TYPES: Record<string, [WeightDType | 'other', number]> = {
  FloatStorage: ['float32', 4],
  HalfStorage: ['float16', 2],
  BFloat16Storage: ['bfloat16', 2],
  DoubleStorage: ['other', 8],
  LongStorage: ['other', 8],
  IntStorage: ['other', 4],
  ShortStorage: ['other', 2],
  CharStorage: ['other', 1],
  ByteStorage: ['other', 1],
  BoolStorage: ['other', 1],
};

export class StorageType {
  constructor(
    readonly name: string,
    readonly dtype: WeightDType | 'other',
    readonly elementSize: number,
  ) {}
}

/** One storage: its type, element count, and how to read bytes from it. */
export interface StorageRef {
  type: StorageType;
  numel: number;
  readInto(byteOffset: number, target: Uint8Array): void;
}

/** A tensor as the pickle describes it: a view (offset, shape, stride) on a storage. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

/** The storage fields of a persistent id ('storage', storage_type, key, location, numel[, view_metadata]). */
export function parseStoragePid(pid: PickleValue, where: string): { type: StorageType; key: string; numel: number; rest: PickleValue[] } {
  if (!Array.isArray(pid) || pid.length < 5 || pid[0] !== 'storage') {
    throw new Error(`${where}: unexpected persistent id ${describe(pid)}; expected ('storage', type, key, location, numel)`);
  }
  const [, type, key, , numel, ...rest] = pid as PickleValue[];
  if (!(type instanceof StorageType) || typeof key !== 'string' || !Number.isInteger(numel) || (numel as number) < 0) {
    throw new Error(`${where}: malformed storage id ${describe(pid)}`);
  }
  return { type, key, numel: numel as number, rest };
}

const isIntArray = (v: PickleValue): v is number[] => Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 0);

/** The allow-list: the only globals a checkpoint may name. */
export function torchGlobals(): Map<string, AllowedGlobal> {
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
  const rebuildTensor: AllowedGlobal = {
    kind: 'callable',
    // v2: (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]); old torch: the first four.
    call: ([storage, offset, size, stride]) => {
      if (!isStorageRef(storage) || !Number.isInteger(offset) || !isIntArray(size) || !isIntArray(stride)) {
        throw new Error('_rebuild_tensor_v2 called with unexpected arguments');
      }
      return new TensorRef(storage, offset as number, size, stride);
    },
  };
  globals.set('torch._utils._rebuild_tensor_v2', rebuildTensor);
  globals.set('torch._utils._rebuild_tensor', rebuildTensor);
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
  for (const [name, [dtype, size]] of Object.entries(STORAGE_TYPES)) {
    globals.set(`torch.${name}`, { kind: 'value', value: new StorageType(name, dtype, size) });
  }
  return globals;
}

function isStorageRef(v: PickleValue): v is StorageRef {
  return typeof v === 'object' && v !== null && (v as StorageRef).type instanceof StorageType;
}

/** Keys under which training frameworks nest the weights (mmengine/mmpretrain: 'state_dict'). */
const NESTED_STATE_DICT_KEYS = ['state_dict', 'model', 'module'];

/** The name → value pairs of the state dict: the top-level dict, or a dict nested under a known key. */
export function stateDictEntries(where: string, root: PickleValue): Map<string, PickleValue> {
  if (!(root instanceof Map)) throw new Error(`${where}: checkpoint does not hold a dict (found ${describe(root)})`);
  const hasTensors = (m: Map<PickleValue, PickleValue>) => [...m.values()].some((v) => v instanceof TensorRef);
  let dict: Map<PickleValue, PickleValue> = root;
  if (!hasTensors(root)) {
    const nested = NESTED_STATE_DICT_KEYS.map((k): PickleValue => root.get(k)).find((v) => v instanceof Map && hasTensors(v));
    if (!nested) throw new Error(`${where}: no tensors found at the top level or under ${NESTED_STATE_DICT_KEYS.join('/')}`);
    dict = nested as Map<PickleValue, PickleValue>;
  }
  for (const key of dict.keys()) {
    if (typeof key !== 'string') throw new Error(`${where}: state dict has a non-string key ${describe(key)}`);
  }
  return dict as Map<string, PickleValue>;
}

export function isContiguous(shape: number[], stride: number[]): boolean {
  if (shape.length !== stride.length) return false;
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i];
  }
  return true;
}

export function describe(v: PickleValue): string {
  if (v instanceof Map) return 'a dict';
  if (Array.isArray(v)) return `(${v.map(describe).join(', ')})`;
  if (v instanceof StorageType) return `torch.${v.name}`;
  return typeof v === 'string' ? `'${v}'` : String(v);
}
