import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { unpickle } from '../../../lib/onnx/checkpoint/pickle';
import { openPytorchCheckpoint } from '../../../lib/onnx/checkpoint/pytorch';
import { encodeTensor, seededValues } from '../../support/checkpoint-writers/encode';
import { Call, Float, Global, OrderedDict, PersistentId, PickleWriter, Tuple } from '../../support/checkpoint-writers/pickle-writer';
import { LEGACY_MAGIC_PICKLE, legacyTorchSave, rebuildTensor, torchSave, writeTorchZip } from '../../support/checkpoint-writers/torch-save';
import { useTmpDir } from '../../support/checkpoint-writers/tmp-dir';
import { writeZip } from '../../support/checkpoint-writers/zip-writer';

/** Bytes from opcodes (numbers), ASCII text (strings) and ready-made buffers. */
function asm(...parts: Array<number | string | Buffer>): Buffer {
  return Buffer.concat(parts.map((p) => (typeof p === 'number' ? Buffer.from([p]) : typeof p === 'string' ? Buffer.from(p, 'latin1') : p)));
}
/** BINUNICODE: 'X', u32 little-endian length, UTF-8 bytes. */
function binunicode(s: string): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32LE(Buffer.byteLength(s));
  return asm(0x58, len, s);
}

/**
 * data.pkl as torch.save(nn.Linear(3, 2).state_dict()) writes it with pickle protocol 2 after .half() on the
 * weight only (weight float16 [2, 3] in storage '0', bias float32 [2] in storage '1'), derived from CPython's
 * pickler (save_reduce, save_tuple, batched SETITEMS, memo) and torch.serialization (persistent_id,
 * Tensor.__reduce_ex__ → _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks)):
 *
 *   PROTO 2
 *   GLOBAL 'collections OrderedDict' BINPUT 0 · EMPTY_TUPLE · REDUCE · BINPUT 1          → the state dict
 *   MARK                                                                                   (2 items → SETITEMS)
 *     BINUNICODE 'weight' BINPUT 2
 *     GLOBAL 'torch._utils _rebuild_tensor_v2' BINPUT 3
 *     MARK                                                                                 (6 args → TUPLE)
 *       MARK BINUNICODE 'storage' BINPUT 4 · GLOBAL 'torch HalfStorage' BINPUT 5 · BINUNICODE '0' BINPUT 6 ·
 *            BINUNICODE 'cpu' BINPUT 7 · BININT1 6 · TUPLE BINPUT 8 · BINPERSID
 *       BININT1 0 · BININT1 2 BININT1 3 TUPLE2 BINPUT 9 · BININT1 3 BININT1 1 TUPLE2 BINPUT 10 · NEWFALSE ·
 *       BINGET 0 EMPTY_TUPLE REDUCE BINPUT 11                                              (backward hooks)
 *     TUPLE BINPUT 12 · REDUCE BINPUT 13
 *     BINUNICODE 'bias' BINPUT 14 · BINGET 3                                                (the same function)
 *     MARK
 *       MARK BINGET 4 ('storage', one shared object) · GLOBAL 'torch FloatStorage' BINPUT 15 ·
 *            BINUNICODE '1' BINPUT 16 · BINGET 7 ('cpu') · BININT1 2 · TUPLE BINPUT 17 · BINPERSID
 *       BININT1 0 · BININT1 2 TUPLE1 BINPUT 18 · BININT1 1 TUPLE1 BINPUT 19 · NEWFALSE · BINGET 0 EMPTY_TUPLE REDUCE BINPUT 20
 *     TUPLE BINPUT 21 · REDUCE BINPUT 22
 *   SETITEMS
 *   [with metadata: EMPTY_DICT BINPUT 23 · BINUNICODE '_metadata' BINPUT 24 · BINGET 0 EMPTY_TUPLE REDUCE BINPUT 25 ·
 *    BINUNICODE '' BINPUT 26 · EMPTY_DICT BINPUT 27 · BINUNICODE 'version' BINPUT 28 · BININT1 1 · SETITEM ·
 *    SETITEM · SETITEM · BUILD]                          (module.state_dict() carries _metadata as instance state)
 *   STOP
 */
function linearStateDictPickle(withMetadata: boolean): Buffer {
  const PROTO = 0x80,
    GLOBAL = 0x63,
    BINPUT = 0x71,
    BINGET = 0x68,
    EMPTY_TUPLE = 0x29,
    REDUCE = 0x52;
  const MARK = 0x28,
    TUPLE = 0x74,
    TUPLE1 = 0x85,
    TUPLE2 = 0x86,
    BININT1 = 0x4b,
    BINPERSID = 0x51;
  const NEWFALSE = 0x89,
    SETITEM = 0x73,
    SETITEMS = 0x75,
    EMPTY_DICT = 0x7d,
    BUILD = 0x62,
    STOP = 0x2e;
  const hooks = [BINGET, 0, EMPTY_TUPLE, REDUCE];
  return asm(
    PROTO,
    2,
    GLOBAL,
    'collections\nOrderedDict\n',
    BINPUT,
    0,
    EMPTY_TUPLE,
    REDUCE,
    BINPUT,
    1,
    MARK,
    binunicode('weight'),
    BINPUT,
    2,
    GLOBAL,
    'torch._utils\n_rebuild_tensor_v2\n',
    BINPUT,
    3,
    MARK,
    MARK,
    binunicode('storage'),
    BINPUT,
    4,
    GLOBAL,
    'torch\nHalfStorage\n',
    BINPUT,
    5,
    binunicode('0'),
    BINPUT,
    6,
    binunicode('cpu'),
    BINPUT,
    7,
    BININT1,
    6,
    TUPLE,
    BINPUT,
    8,
    BINPERSID,
    BININT1,
    0,
    BININT1,
    2,
    BININT1,
    3,
    TUPLE2,
    BINPUT,
    9,
    BININT1,
    3,
    BININT1,
    1,
    TUPLE2,
    BINPUT,
    10,
    NEWFALSE,
    ...hooks,
    BINPUT,
    11,
    TUPLE,
    BINPUT,
    12,
    REDUCE,
    BINPUT,
    13,
    binunicode('bias'),
    BINPUT,
    14,
    BINGET,
    3,
    MARK,
    MARK,
    BINGET,
    4,
    GLOBAL,
    'torch\nFloatStorage\n',
    BINPUT,
    15,
    binunicode('1'),
    BINPUT,
    16,
    BINGET,
    7,
    BININT1,
    2,
    TUPLE,
    BINPUT,
    17,
    BINPERSID,
    BININT1,
    0,
    BININT1,
    2,
    TUPLE1,
    BINPUT,
    18,
    BININT1,
    1,
    TUPLE1,
    BINPUT,
    19,
    NEWFALSE,
    ...hooks,
    BINPUT,
    20,
    TUPLE,
    BINPUT,
    21,
    REDUCE,
    BINPUT,
    22,
    SETITEMS,
    ...(withMetadata
      ? [
          EMPTY_DICT,
          BINPUT,
          23,
          binunicode('_metadata'),
          BINPUT,
          24,
          ...hooks,
          BINPUT,
          25,
          binunicode(''),
          BINPUT,
          26,
          EMPTY_DICT,
          BINPUT,
          27,
          binunicode('version'),
          BINPUT,
          28,
          BININT1,
          1,
          SETITEM,
          SETITEM,
          SETITEM,
          BUILD,
        ]
      : []),
    STOP,
  );
}

const WEIGHT = Float32Array.of(0.5, -1, 2.25, 3, -0.125, 1024);
const BIAS = Float32Array.of(0.1, -7.5);

describe('checkpoint/pytorch', () => {
  const tmp = useTmpDir('pth');
  const file = (name: string) => path.join(tmp(), name);

  it('reads a hand-assembled torch.save pickle (with _metadata BUILD) and its storages', () => {
    const f = file('linear.pth');
    writeTorchZip(f, linearStateDictPickle(true), [
      { key: '0', data: encodeTensor(WEIGHT, 'float16') },
      { key: '1', data: encodeTensor(BIAS, 'float32') },
    ]);
    const ckpt = openPytorchCheckpoint(f);
    assert.deepEqual(ckpt.names(), ['weight', 'bias']);
    const weight = ckpt.get('weight')!;
    assert.equal(weight.dtype, 'float16');
    assert.deepEqual(weight.shape, [2, 3]);
    assert.deepEqual(weight.read(), WEIGHT);
    assert.equal(ckpt.get('bias')!.dtype, 'float32');
    assert.deepEqual(ckpt.get('bias')!.read(), BIAS);
  });

  it('the test writer emits the same bytes as the hand-assembled torch pickle', () => {
    const written = PickleWriter.dump(
      new OrderedDict([
        ['weight', rebuildTensor('0', 'float16', 6, [2, 3])],
        ['bias', rebuildTensor('1', 'float32', 2, [2])],
      ]),
    );
    assert.deepEqual(written, linearStateDictPickle(false));
  });

  it('round-trips fp32, fp16 and bf16 tensors, under any archive folder name', () => {
    const f32 = seededValues(60, 11);
    const f16 = Float32Array.from(seededValues(20, 12), (v) => Math.round(v * 2048) / 2048);
    const bf16 = Float32Array.from(seededValues(8, 13, 100), (v) => Math.round(v));
    const f = file('mixed.pt');
    torchSave(
      f,
      [
        { name: 'layers.0.attn.qkv.weight', shape: [3, 4, 5], dtype: 'float32', data: f32 },
        { name: 'layers.0.ln1.weight', shape: [20], dtype: 'float16', data: f16 },
        { name: 'cls_token', shape: [1, 1, 8], dtype: 'bfloat16', data: bf16 },
      ],
      { archiveName: 'mixed' },
    );
    const ckpt = openPytorchCheckpoint(f);
    assert.deepEqual(ckpt.get('layers.0.attn.qkv.weight')!.shape, [3, 4, 5]);
    assert.deepEqual(ckpt.get('layers.0.attn.qkv.weight')!.read(), f32);
    assert.deepEqual(ckpt.get('layers.0.ln1.weight')!.read(), f16);
    assert.equal(ckpt.get('cls_token')!.dtype, 'bfloat16');
    assert.deepEqual(ckpt.get('cls_token')!.read(), bf16);
  });

  it('reads ZIP64 archives (as written for checkpoints over 4 GiB) and deflated entries', () => {
    const f = file('zip64.pth');
    torchSave(f, [{ name: 'w', shape: [2, 2], dtype: 'float32', data: Float32Array.of(1, 2, 3, 4) }], { zip64: true });
    assert.deepEqual([...openPytorchCheckpoint(f).get('w')!.read()], [1, 2, 3, 4]);

    const deflated = file('deflated.pth');
    writeZip(deflated, [
      { name: 'archive/data.pkl', data: PickleWriter.dump(new OrderedDict([['w', rebuildTensor('0', 'float32', 4, [4])]])), deflate: true },
      { name: 'archive/data/0', data: encodeTensor(Float32Array.of(5, 6, 7, 8), 'float32'), deflate: true },
    ]);
    assert.deepEqual([...openPytorchCheckpoint(deflated).get('w')!.read()], [5, 6, 7, 8]);
  });

  it('finds the weights nested under state_dict next to simple meta values (mmengine layout)', () => {
    const f = file('nested.pth');
    torchSave(f, [{ name: 'backbone.pre_norm.weight', shape: [3], dtype: 'float32', data: Float32Array.of(1, 2, 3) }], {
      wrap: (sd) =>
        new Map<unknown, unknown>([
          [
            'meta',
            new Map<unknown, unknown>([
              ['epoch', 12],
              ['lr', new Float(0.25)],
              ['big', 2 ** 40],
              ['neg', -70000],
              ['classes', new Tuple(['cat', 'dog'])],
              ['history', [1, 2, 3]],
              ['note', null],
              ['ok', true],
              ['name', 'ViT-L/14 ✓'],
            ]),
          ],
          ['state_dict', sd],
        ]) as never,
    });
    const ckpt = openPytorchCheckpoint(f);
    assert.deepEqual(ckpt.names(), ['backbone.pre_norm.weight']);
    assert.deepEqual([...ckpt.get('backbone.pre_norm.weight')!.read()], [1, 2, 3]);
  });

  it('reads views at storage offsets and rejects non-contiguous strides by name', () => {
    const shared = Float32Array.from({ length: 10 }, (_, i) => i);
    const f = file('views.pth');
    writeTorchZip(
      f,
      PickleWriter.dump(
        new OrderedDict([
          ['head', rebuildTensor('0', 'float32', 10, [4])],
          ['tail', rebuildTensor('0', 'float32', 10, [2, 3], 4)],
        ]),
      ),
      [{ key: '0', data: encodeTensor(shared, 'float32') }],
    );
    const ckpt = openPytorchCheckpoint(f);
    assert.deepEqual([...ckpt.get('head')!.read()], [0, 1, 2, 3]);
    assert.deepEqual(ckpt.get('tail')!.shape, [2, 3]);
    assert.deepEqual([...ckpt.get('tail')!.read()], [4, 5, 6, 7, 8, 9]);

    const transposed = file('transposed.pth');
    writeTorchZip(transposed, PickleWriter.dump(new OrderedDict([['proj.weight', rebuildTensor('0', 'float32', 6, [2, 3], 0, [1, 2])]])), [
      { key: '0', data: encodeTensor(shared.slice(0, 6), 'float32') },
    ]);
    assert.throws(() => openPytorchCheckpoint(transposed), /'proj\.weight' is not contiguous \(shape \[2, 3\], stride \[1, 2\]\)/);
  });

  it('reads storage bytes when read() is called, not when the checkpoint is opened', () => {
    const f = file('lazy.pth');
    torchSave(f, [{ name: 'w', shape: [3], dtype: 'float32', data: Float32Array.of(1, 2, 3) }]);
    const ckpt = openPytorchCheckpoint(f);
    const bytes = fs.readFileSync(f);
    const at = bytes.indexOf(Buffer.from(Float32Array.of(1, 2, 3).buffer));
    bytes.writeFloatLE(-5, at + 4);
    fs.writeFileSync(f, bytes);
    assert.deepEqual([...ckpt.get('w')!.read()], [1, -5, 3]);
  });

  it('skips integer tensors (e.g. int64 buffers) and lists them', () => {
    const f = file('ints.pth');
    const longTensor = new Call(new Global('torch._utils', '_rebuild_tensor_v2'), [
      new PersistentId(new Tuple(['storage', new Global('torch', 'LongStorage'), '1', 'cpu', 3])),
      0,
      new Tuple([3]),
      new Tuple([1]),
      false,
      new OrderedDict([]),
    ]);
    writeTorchZip(
      f,
      PickleWriter.dump(
        new OrderedDict([
          ['w', rebuildTensor('0', 'float32', 1, [1])],
          ['position_ids', longTensor],
        ]),
      ),
      [
        { key: '0', data: encodeTensor(Float32Array.of(9), 'float32') },
        { key: '1', data: Buffer.alloc(24) },
      ],
    );
    const ckpt = openPytorchCheckpoint(f);
    assert.deepEqual(ckpt.names(), ['w']);
    assert.deepEqual(ckpt.skipped, ['position_ids']);
  });

  it('rejects a malicious pickle (GLOBAL os.system + REDUCE) without executing anything', () => {
    const marker = file('pwned');
    const evil = asm(0x80, 2, 0x63, 'os\nsystem\n', binunicode(`touch ${marker}`), 0x85, 0x52, 0x2e);
    const f = file('evil.pth');
    writeTorchZip(f, evil, []);
    assert.throws(() => openPytorchCheckpoint(f), /global 'os\.system', which is not allowed/);
    assert.equal(fs.existsSync(marker), false);

    // The same through STACK_GLOBAL with protocol 4 framing, and hidden in the meta next to real weights.
    const evalCall = asm(0x80, 4, 0x95, Buffer.alloc(8), 0x8c, 8, 'builtins', 0x8c, 4, 'eval', 0x93, 0x8c, 1, '1', 0x85, 0x52, 0x2e);
    assert.throws(() => unpickle(evalCall, { globals: new Map() }), /global 'builtins\.eval'/);
    // BUILD may only set state on objects an allowed callable made (no __setstate__ on arbitrary values).
    const buildOnList = asm(0x80, 2, 0x5d, 0x7d, 0x62, 0x2e);
    assert.throws(() => unpickle(buildOnList, { globals: new Map() }), /BUILD on an object that does not accept state/);
    const hidden = file('hidden.pth');
    torchSave(hidden, [{ name: 'w', shape: [1], dtype: 'float32', data: Float32Array.of(1) }], {
      wrap: (sd) =>
        new Map<unknown, unknown>([
          ['state_dict', sd],
          ['meta', new Call(new Global('subprocess', 'Popen'), [new Tuple(['touch', marker])])],
        ]) as never,
    });
    assert.throws(() => openPytorchCheckpoint(hidden), /global 'subprocess\.Popen'/);
    assert.equal(fs.existsSync(marker), false);
  });

  it('reads the legacy (pre-zip) torch.save format, storages in sorted-key order', () => {
    // The magic pickle by hand: 0x1950a86a20f9469cfc6c as LONG1 is these 10 little-endian bytes.
    assert.deepEqual(LEGACY_MAGIC_PICKLE, asm(0x80, 2, 0x8a, 10, Buffer.from('6cfc9c46f9206aa85019', 'hex'), 0x2e));
    const tensors = Array.from({ length: 12 }, (_, i) => ({
      name: `layers.${i}.weight`,
      shape: [2, i + 1],
      dtype: (['float32', 'float16', 'bfloat16'] as const)[i % 3],
      data: Float32Array.from({ length: 2 * (i + 1) }, (_, j) => i - j * 0.25), // exact in bf16
    }));
    const f = file('legacy.pth');
    legacyTorchSave(f, tensors); // 12 keys: sorted '0', '1', '10', '11', '2', … puts storage data out of tensor order
    const ckpt = openPytorchCheckpoint(f);
    assert.equal(ckpt.format, 'legacy');
    assert.deepEqual(
      ckpt.names(),
      tensors.map((t) => t.name),
    );
    for (const t of tensors) assert.deepEqual(ckpt.get(t.name)!.read(), t.data, t.name);
  });

  it('gives clear errors for files that are not PyTorch checkpoints', () => {
    const notTorch = file('not-torch.pth');
    fs.writeFileSync(notTorch, asm(0x80, 2, 0x8a, 0x0a, Buffer.from('00000000000000000000', 'hex'), 0x2e));
    assert.throws(() => openPytorchCheckpoint(notTorch), /neither a torch\.save zip nor the legacy torch\.save format/);

    const legacyEvil = file('legacy-evil.pth');
    fs.writeFileSync(
      legacyEvil,
      Buffer.concat([
        LEGACY_MAGIC_PICKLE,
        PickleWriter.dump(1001),
        PickleWriter.dump(new Map([['little_endian', true]])),
        asm(0x80, 2, 0x63, 'posix\nsystem\n', binunicode('true'), 0x85, 0x52, 0x2e),
      ]),
    );
    assert.throws(() => openPytorchCheckpoint(legacyEvil), /global 'posix\.system', which is not allowed/);

    const otherZip = file('other.zip');
    writeZip(otherZip, [{ name: 'readme.txt', data: Buffer.from('hello') }]);
    assert.throws(() => openPytorchCheckpoint(otherZip), /expected one <name>\/data\.pkl entry, found 0/);

    const truncatedPickle = file('truncated.pth');
    writeTorchZip(truncatedPickle, linearStateDictPickle(false).subarray(0, 40), []);
    assert.throws(() => openPytorchCheckpoint(truncatedPickle), /pickle ends in the middle of an opcode|pickle ended without STOP/);

    const missingStorage = file('missing-storage.pth');
    writeTorchZip(missingStorage, linearStateDictPickle(false), [{ key: '0', data: encodeTensor(WEIGHT, 'float16') }]);
    assert.throws(() => openPytorchCheckpoint(missingStorage), /storage '1' has no zip entry archive\/data\/1/);
  });
});
