// Writes what torch.save (zip format, pickle protocol 2) writes for a state dict, for tests:
// <archive>/data.pkl, <archive>/byteorder, <archive>/data/<key> (one storage per tensor), <archive>/version.
import * as fs from 'fs';
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

/**
 * The pickled form of one tensor: _rebuild_tensor_v2(storage pid, offset, size, stride, False, OrderedDict()).
 * The legacy format's storage ids carry a sixth field, view_metadata (None).
 */
export function rebuildTensor(
  key: string,
  dtype: WeightDType,
  storageNumel: number,
  shape: number[],
  offset = 0,
  stride = contiguousStride(shape),
  legacy = false,
): Call {
  const pid = new PersistentId(new Tuple(['storage', new Global('torch', STORAGE_CLASS[dtype]), key, 'cpu', storageNumel, ...(legacy ? [null] : [])]));
  return new Call(new Global('torch._utils', '_rebuild_tensor_v2'), [pid, offset, new Tuple(shape), new Tuple(stride), false, new OrderedDict([])]);
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
  const stateDict = new OrderedDict(tensors.map((t, i) => [t.name, rebuildTensor(String(i), t.dtype, t.data.length, t.shape)]));
  const root = options.wrap ? options.wrap(stateDict) : stateDict;
  const storages = tensors.map((t, i) => ({ key: String(i), data: encodeTensor(t.data, t.dtype) }));
  writeTorchZip(file, PickleWriter.dump(root), storages, options.archiveName, options.zip64);
}

/** Assembles the zip around an already pickled data.pkl and its storages. */
export function writeTorchZip(file: string, pickle: Buffer, storages: { key: string; data: Buffer }[], archiveName = 'archive', zip64 = false): void {
  const entries: ZipEntryToWrite[] = [
    { name: `${archiveName}/data.pkl`, data: pickle },
    { name: `${archiveName}/byteorder`, data: Buffer.from('little') },
    ...storages.map((s) => ({ name: `${archiveName}/data/${s.key}`, data: s.data })),
    { name: `${archiveName}/version`, data: Buffer.from('3\n') },
  ];
  writeZip(file, entries, zip64);
}

/** PROTO 2, LONG1 of the 10-byte magic number 0x1950a86a20f9469cfc6c (little-endian), STOP. */
export const LEGACY_MAGIC_PICKLE = Buffer.from([0x80, 2, 0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]);

/**
 * Writes what torch.save(..., _use_new_zipfile_serialization=False) writes for a state dict: the magic number,
 * protocol version and sys_info pickles, the state dict pickle, the sorted storage keys, then each storage
 * as int64 element count + raw bytes.
 */
export function legacyTorchSave(file: string, tensors: TensorToWrite[]): void {
  const keys = tensors.map((_, i) => String(i));
  const stateDict = new OrderedDict(
    tensors.map((t, i) => [t.name, rebuildTensor(keys[i], t.dtype, t.data.length, t.shape, 0, contiguousStride(t.shape), true)]),
  );
  const sysInfo = new Map<PyValue, PyValue>([
    ['protocol_version', 1001],
    ['little_endian', true],
    [
      'type_sizes',
      new Map<PyValue, PyValue>([
        ['short', 2],
        ['int', 4],
        ['long', 4],
      ]),
    ],
  ]);
  const sorted = [...keys].sort();
  const storages = sorted.map((key) => {
    const t = tensors[Number(key)];
    const count = Buffer.alloc(8);
    count.writeBigInt64LE(BigInt(t.data.length));
    return Buffer.concat([count, encodeTensor(t.data, t.dtype)]);
  });
  fs.writeFileSync(
    file,
    Buffer.concat([
      LEGACY_MAGIC_PICKLE,
      PickleWriter.dump(1001),
      PickleWriter.dump(sysInfo),
      PickleWriter.dump(stateDict),
      PickleWriter.dump(sorted),
      ...storages,
    ]),
  );
}
