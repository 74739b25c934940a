import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import { openSafetensors, openSafetensorsIndex } from '../../../lib/onnx/checkpoint/safetensors';
import { TensorToWrite, seededValues } from '../../support/checkpoint-writers/encode';
import { writeSafetensors, writeShardedSafetensors } from '../../support/checkpoint-writers/safetensors';
import { useTmpDir } from '../../support/checkpoint-writers/tmp-dir';

/** A safetensors file assembled by hand from the format description, independent of the test writer. */
function handMadeSafetensors(file: string, header: object, data: Buffer): void {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([length, json, data]));
}

function u16(...values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 2);
  values.forEach((v, i) => b.writeUInt16LE(v, i * 2));
  return b;
}

describe('checkpoint/safetensors', () => {
  const tmp = useTmpDir('st');

  it('decodes F16 and BF16 bit patterns exactly (normal, subnormal, max, inf, negative zero)', () => {
    const file = path.join(tmp(), 'bits.safetensors');
    // F16: 1, -2, 65504 (max), 2^-24 (smallest subnormal), +inf, 0.333251953125, -0
    const f16 = u16(0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x3555, 0x8000);
    // BF16: 1, 3.140625, -123.5, 2^-133 (subnormal), -inf
    const bf16 = u16(0x3f80, 0x4049, 0xc2f7, 0x0001, 0xff80);
    handMadeSafetensors(
      file,
      {
        __metadata__: { format: 'pt' },
        half: { dtype: 'F16', shape: [7], data_offsets: [0, 14] },
        brain: { dtype: 'BF16', shape: [5], data_offsets: [14, 24] },
      },
      Buffer.concat([f16, bf16]),
    );
    const src = openSafetensors(file);
    assert.deepEqual(src.names(), ['half', 'brain']);
    assert.deepEqual(src.metadata, { format: 'pt' });
    const half = src.get('half')!;
    assert.equal(half.dtype, 'float16');
    assert.deepEqual([...half.read()], [1, -2, 65504, 2 ** -24, Infinity, 0.333251953125, -0]);
    assert.ok(Object.is(half.read()[6], -0));
    assert.deepEqual([...src.get('brain')!.read()], [1, 3.140625, -123.5, 2 ** -133, -Infinity]);
  });

  it('round-trips F32/F16/BF16 tensors with their shapes and values', () => {
    const file = path.join(tmp(), 'mixed.safetensors');
    const f32 = seededValues(24, 1);
    // Values that fp16/bf16 hold exactly, so the round trip must be exact.
    const f16 = Float32Array.from(seededValues(12, 2), (v) => Math.round(v * 1024) / 1024);
    const bf16 = Float32Array.from(seededValues(6, 3), (v) => Math.round(v * 128) / 128);
    writeSafetensors(file, [
      { name: 'a.weight', shape: [2, 3, 4], dtype: 'float32', data: f32 },
      { name: 'b.weight', shape: [3, 4], dtype: 'float16', data: f16 },
      { name: 'c.bias', shape: [6], dtype: 'bfloat16', data: bf16 },
    ]);
    const src = openSafetensors(file);
    assert.deepEqual(src.get('a.weight')!.shape, [2, 3, 4]);
    assert.deepEqual(src.get('a.weight')!.read(), f32);
    assert.deepEqual(src.get('b.weight')!.read(), f16);
    assert.equal(src.get('c.bias')!.dtype, 'bfloat16');
    assert.deepEqual(src.get('c.bias')!.read(), bf16);
    assert.equal(src.get('missing'), undefined);
  });

  it('reads tensor bytes when read() is called, not when the file is opened', () => {
    const file = path.join(tmp(), 'lazy.safetensors');
    writeSafetensors(file, [{ name: 'w', shape: [4], dtype: 'float32', data: Float32Array.of(1, 2, 3, 4) }]);
    const src = openSafetensors(file);
    // Overwrite the data region after opening: a lazy reader sees the new bytes.
    const bytes = fs.readFileSync(file);
    const dataStart = bytes.length - 16;
    bytes.writeFloatLE(42, dataStart + 8);
    fs.writeFileSync(file, bytes);
    assert.deepEqual([...src.get('w')!.read()], [1, 2, 42, 4]);
  });

  it('lists non-float tensors as skipped instead of offering them as weights', () => {
    const file = path.join(tmp(), 'ints.safetensors');
    handMadeSafetensors(
      file,
      {
        ids: { dtype: 'I64', shape: [2], data_offsets: [0, 16] },
        w: { dtype: 'F32', shape: [1], data_offsets: [16, 20] },
      },
      Buffer.concat([Buffer.alloc(16), Buffer.from(Float32Array.of(7).buffer)]),
    );
    const src = openSafetensors(file);
    assert.deepEqual(src.names(), ['w']);
    assert.deepEqual(src.skipped, ['ids']);
  });

  it('reads a sharded checkpoint through model.safetensors.index.json', () => {
    const dir = fs.mkdtempSync(path.join(tmp(), 'sharded-'));
    const shard1: TensorToWrite[] = [
      { name: 'x.weight', shape: [2, 2], dtype: 'float32', data: Float32Array.of(1, 2, 3, 4) },
      { name: 'y.weight', shape: [3], dtype: 'float16', data: Float32Array.of(0.5, -1.5, 8) },
    ];
    const shard2: TensorToWrite[] = [{ name: 'z.weight', shape: [1, 2], dtype: 'bfloat16', data: Float32Array.of(-0.25, 256) }];
    const index = writeShardedSafetensors(dir, [shard1, shard2]);
    const src = openSafetensorsIndex(index);
    assert.deepEqual(src.names().sort(), ['x.weight', 'y.weight', 'z.weight']);
    assert.deepEqual([...src.get('y.weight')!.read()], [0.5, -1.5, 8]);
    assert.deepEqual([...src.get('z.weight')!.read()], [-0.25, 256]);
    assert.deepEqual(src.get('x.weight')!.shape, [2, 2]);
  });

  it('gives clear errors for broken files and indexes', () => {
    const dir = fs.mkdtempSync(path.join(tmp(), 'broken-'));
    const text = path.join(dir, 'notes.safetensors');
    fs.writeFileSync(text, 'this is not a safetensors file at all');
    assert.throws(() => openSafetensors(text), /not a safetensors file/);

    const badOffsets = path.join(dir, 'offsets.safetensors');
    handMadeSafetensors(badOffsets, { w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, Buffer.alloc(8));
    assert.throws(() => openSafetensors(badOffsets), /'w'.*8 bytes do not hold F32 \[3\]/);

    const outside = path.join(dir, 'outside.safetensors');
    handMadeSafetensors(outside, { w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, Buffer.alloc(8));
    assert.throws(() => openSafetensors(outside), /fall outside the 8 data bytes/);

    const index = path.join(dir, 'model.safetensors.index.json');
    fs.writeFileSync(index, JSON.stringify({ weight_map: { w: 'model-00001-of-00002.safetensors' } }));
    assert.throws(() => openSafetensorsIndex(index), /shard 'model-00001-of-00002.safetensors' \(for 'w'\) is missing/);

    writeSafetensors(path.join(dir, 'one.safetensors'), [{ name: 'a', shape: [1], dtype: 'float32', data: Float32Array.of(1) }]);
    fs.writeFileSync(index, JSON.stringify({ weight_map: { a: 'one.safetensors', b: 'one.safetensors' } }));
    assert.throws(() => openSafetensorsIndex(index), /'b' is listed in shard 'one.safetensors' but that shard does not hold it/);

    fs.writeFileSync(index, JSON.stringify({ weight_map: { a: '../one.safetensors' } }));
    assert.throws(() => openSafetensorsIndex(index), /not a file name inside the folder/);
  });
});
