// Writes what torch.save (zip format, pickle protocol 2) writes for a state dict, for tests:
// <archive>/data.pkl, <archive>/byteorder, <archive>/data/<key> (one storage per tensor), <archive>/version.
import { WeightDType } from '../../../lib/onnx/weights';
import { TensorToWrite, encodeTensor } from './encode';
import { Call, Global, OrderedDict, PersistentId, PickleWriter, PyValue, Tuple } from './pickle-writer';
import { ZipEntryToWrite, writeZip } from './zip-writer';

const STORAGE_CLASS: Record<WeightDType, string> = {
  float32: 'FloatStorage',
  float16: 'HalfStorage',
  bfloat16: 'BFloat16Storage',
};

export function contiguousStride(shape: number[]): number[] {
  const stride = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    stride[i] = s;
    s *= shape[i];
  }
  return stride;
}

/** The pickled form of one tensor: _rebuild_tensor_v2(storage pid, offset, size, stride, False, OrderedDict()). */
export function rebuildTensor(
  key: string,
  dtype: WeightDType,
  storageNumel: number,
  shape: number[],
  offset = 0,
  stride = contiguousStride(shape),
): Call {
  const pid = new PersistentId(
    new Tuple(['storage', new Global('torch', STORAGE_CLASS[dtype]), key, 'cpu', storageNumel]),
  );
  return new Call(new Global('torch._utils', '_rebuild_tensor_v2'), [
    pid,
    offset,
    new Tuple(shape),
    new Tuple(stride),
    false,
    new OrderedDict([]),
  ]);
}

export interface TorchSaveOptions {
  /** Folder name inside the zip (torch uses 'archive'). */
  archiveName?: string;
  /** Write ZIP64 records, as for checkpoints over 4 GiB. */
  zip64?: boolean;
  /** Wraps the state dict, e.g. sd => new Map([['state_dict', sd], ['meta', …]]) like mmengine does. */
  wrap?: (stateDict: OrderedDict) => PyValue;
}

/** Writes `tensors` as torch.save(OrderedDict(...)) would. */
export function torchSave(file: string, tensors: TensorToWrite[], options: TorchSaveOptions = {}): void {
  const stateDict = new OrderedDict(
    tensors.map((t, i) => [t.name, rebuildTensor(String(i), t.dtype, t.data.length, t.shape)]),
  );
  const root = options.wrap ? options.wrap(stateDict) : stateDict;
  const storages = tensors.map((t, i) => ({ key: String(i), data: encodeTensor(t.data, t.dtype) }));
  writeTorchZip(file, PickleWriter.dump(root), storages, options.archiveName, options.zip64);
}

/** Assembles the zip around an already pickled data.pkl and its storages. */
export function writeTorchZip(
  file: string,
  pickle: Buffer,
  storages: { key: string; data: Buffer }[],
  archiveName = 'archive',
  zip64 = false,
): void {
  const entries: ZipEntryToWrite[] = [
    { name: `${archiveName}/data.pkl`, data: pickle },
    { name: `${archiveName}/byteorder`, data: Buffer.from('little') },
    ...storages.map((s) => ({ name: `${archiveName}/data/${s.key}`, data: s.data })),
    { name: `${archiveName}/version`, data: Buffer.from('3\n') },
  ];
  writeZip(file, entries, zip64);
}
