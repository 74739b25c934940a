// A small ONNX graph-construction layer over proto.ts: declare inputs/outputs (symbolic dims allowed), add
// initializers from typed arrays (or lazily, so multi-GB conversions hold one tensor at a time), emit named ops
// in ai.onnx and com.microsoft, then serialize in memory or write to a file with external data.
//
// Usage (a MatMul chain, loaded by onnxruntime-node):
//   const g = new Graph('chain');
//   const x = g.input('x', 'float32', ['batch', 64]);
//   const w = g.initializer('w', tensor('float32', [64, 64], new Float32Array(64 * 64).fill(0.01)));
//   const y = g.op('MatMul', [g.op('MatMul', [x, w]), w]);
//   g.output(y, 'float32', ['batch', 64], 'y');
//   await ort.InferenceSession.create(g.toBytes());          // or g.writeFile('m.onnx', { externalData: true })
//   g.op('GroupQueryAttention', [...], { num_heads: 4, kv_num_heads: 2, scale: floatAttr(0.25) },
//        { domain: MS_DOMAIN, outputs: 3 });                  // multi-output ops return every output name
import * as fs from 'fs';
import * as path from 'path';
import {
  AttributeProto,
  Dim,
  DTYPE_BYTES,
  encodeModel,
  GraphProto,
  ModelProto,
  NodeProto,
  OnnxDataType,
  TensorDType,
  TensorProto,
  ValueInfoProto,
} from './proto';

export { Dim, TensorDType } from './proto';

export const MS_DOMAIN = 'com.microsoft';
/** ai.onnx opset stamped by default: ≤ 26 is what ORT 1.30 accepts; 21 has LayerNormalization and Gelu. */
export const DEFAULT_OPSET = 21;
const IR_VERSION = 10;
const PROTOBUF_LIMIT = 2 ** 31 - 1;

export type TensorData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Uint16Array | Int16Array;

export interface Tensor {
  dtype: Exclude<TensorDType, 'string'>;
  dims: number[];
  /** Element data, or a function producing it at write time (called once per serialization). */
  data: TensorData | (() => TensorData);
}

export function tensor(dtype: Tensor['dtype'], dims: number[], data: Tensor['data']): Tensor {
  return { dtype, dims, data };
}

/** Marks a number as a FLOAT attribute (plain numbers are INT when integral, FLOAT otherwise). */
export interface FloatAttr {
  float: number;
}
export interface FloatsAttr {
  floats: number[];
}
export function floatAttr(v: number): FloatAttr {
  return { float: v };
}
export function floatsAttr(v: number[]): FloatsAttr {
  return { floats: v };
}
export type AttrValue = number | string | number[] | string[] | FloatAttr | FloatsAttr | Tensor;

export interface OpOptions {
  /** '' (ai.onnx, default) or MS_DOMAIN. */
  domain?: string;
  /** How many outputs to create, or their exact names. Default 1. */
  outputs?: number | string[];
  /** Node name (and prefix of generated output names). */
  name?: string;
}

export interface WriteOptions {
  /** Put initializers in `<file>_data` (data_location EXTERNAL). Required for models over 2 GB. */
  externalData?: boolean;
  /** Initializers smaller than this stay inline (default 1024 bytes). */
  externalMinBytes?: number;
  onProgress?: (p: { tensorsDone: number; tensorsTotal: number; bytesWritten: number }) => void;
}

interface Initializer {
  name: string;
  tensor: Tensor;
}

function tensorBytes(t: Tensor, name: string): Uint8Array {
  const data = typeof t.data === 'function' ? t.data() : t.data;
  const count = t.dims.reduce((a, b) => a * b, 1);
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.length !== count * DTYPE_BYTES[t.dtype]) {
    throw new Error(`initializer ${name}: ${bytes.length} bytes do not match ${t.dtype} dims [${t.dims.join(',')}]`);
  }
  return bytes;
}

function attribute(name: string, v: AttrValue): AttributeProto {
  if (typeof v === 'number') return Number.isInteger(v) ? { name, type: 'int', value: v } : { name, type: 'float', value: v };
  if (typeof v === 'string') return { name, type: 'string', value: v };
  if (Array.isArray(v)) {
    if (v.every((x) => typeof x === 'string')) return { name, type: 'strings', value: v };
    if (v.every((x) => Number.isInteger(x))) return { name, type: 'ints', value: v };
    throw new Error(`attribute ${name}: use floatsAttr() for float lists`);
  }
  if ('float' in v) return { name, type: 'float', value: v.float };
  if ('floats' in v) return { name, type: 'floats', value: v.floats };
  return { name, type: 'tensor', value: { name, dataType: OnnxDataType[v.dtype], dims: v.dims, rawData: tensorBytes(v, name) } };
}

export class Graph {
  private readonly nodes: NodeProto[] = [];
  private readonly inits: Initializer[] = [];
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private readonly used = new Set<string>();
  private counter = 0;
  readonly opsets = new Map<string, number>();

  constructor(
    readonly name: string,
    opts: { opset?: number } = {},
  ) {
    this.opsets.set('', opts.opset ?? DEFAULT_OPSET);
  }

  private claim(name: string): string {
    if (this.used.has(name)) throw new Error(`graph ${this.name}: value name "${name}" is already defined`);
    this.used.add(name);
    return name;
  }

  /** A value name based on `base` that is not used yet (not reserved until something defines it). */
  uniqueName(base: string): string {
    let name = base;
    while (this.used.has(name)) name = `${base}_${++this.counter}`;
    return name;
  }

  input(name: string, dtype: TensorDType, shape: Dim[]): string {
    this.inputs.push({ name: this.claim(name), elemType: OnnxDataType[dtype], shape });
    return name;
  }

  /** Declares `value` a graph output; when `name` differs, an Identity renames it. */
  output(value: string, dtype: TensorDType, shape: Dim[], name = value): void {
    if (name !== value) this.op('Identity', [value], {}, { outputs: [name] });
    this.outputs.push({ name, elemType: OnnxDataType[dtype], shape });
  }

  initializer(name: string, t: Tensor): string {
    this.inits.push({ name: this.claim(name), tensor: t });
    return name;
  }

  /** Total size of the initializers' data in bytes (from dims, without reading lazy tensors). */
  initializerBytes(): number {
    return this.inits.reduce((sum, { tensor: t }) => sum + t.dims.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype], 0);
  }

  /** Small constants as initializers with generated names. */
  constFloat(values: number | number[], dims?: number[]): string {
    const arr = typeof values === 'number' ? [values] : values;
    return this.initializer(this.uniqueName('const_f'), tensor('float32', dims ?? (typeof values === 'number' ? [] : [arr.length]), Float32Array.from(arr)));
  }

  constInt64(values: number | number[], dims?: number[]): string {
    const arr = typeof values === 'number' ? [values] : values;
    const data = BigInt64Array.from(arr.map((v) => BigInt(v)));
    return this.initializer(this.uniqueName('const_i'), tensor('int64', dims ?? (typeof values === 'number' ? [] : [arr.length]), data));
  }

  /** Emits a node and returns its output names. Use '' for an omitted optional input. */
  ops(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, opts: OpOptions = {}): string[] {
    const domain = opts.domain ?? '';
    if (domain && !this.opsets.has(domain)) this.opsets.set(domain, 1);
    const nodeName = this.uniqueNodeName(opts.name ?? opType);
    const outs =
      typeof opts.outputs === 'object'
        ? opts.outputs.map((o) => this.claim(o))
        : Array.from({ length: opts.outputs ?? 1 }, (_, i) => this.claim(this.uniqueName(`${nodeName}/out${i}`)));
    this.nodes.push({
      name: nodeName,
      opType,
      domain,
      inputs,
      outputs: outs,
      attributes: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outs;
  }

  /** Emits a single-output node and returns its output name. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, opts: OpOptions = {}): string {
    return this.ops(opType, inputs, attrs, opts)[0];
  }

  private readonly nodeNames = new Set<string>();
  private uniqueNodeName(base: string): string {
    let name = base;
    while (this.nodeNames.has(name)) name = `${base}_${++this.counter}`;
    this.nodeNames.add(name);
    return name;
  }

  private buildModel(initializers: TensorProto[]): ModelProto {
    const graph: GraphProto = { name: this.name, nodes: this.nodes, initializers, inputs: this.inputs, outputs: this.outputs };
    return {
      irVersion: IR_VERSION,
      producerName: 'node-red-contrib-llava',
      producerVersion: '0.1.0',
      opsetImports: [...this.opsets].map(([domain, version]) => ({ domain, version })),
      graph,
    };
  }

  /** The whole model as one protobuf (all initializers inline; must stay under 2 GB). */
  toBytes(): Uint8Array {
    const inits = this.inits.map(({ name, tensor: t }) => ({
      name,
      dataType: OnnxDataType[t.dtype],
      dims: t.dims,
      rawData: tensorBytes(t, name),
    }));
    const w = encodeModel(this.buildModel(inits));
    if (w.length > PROTOBUF_LIMIT) {
      throw new Error(`graph ${this.name} is ${w.length} bytes, over the 2 GB protobuf limit: write it with externalData`);
    }
    return w.toBytes();
  }

  /** Writes `file` (and `file` + '_data' with externalData). Returns the paths written. */
  writeFile(file: string, opts: WriteOptions = {}): string[] {
    const minBytes = opts.externalMinBytes ?? 1024;
    const dataFile = `${file}_data`;
    const dataName = path.basename(dataFile);
    const written = [file];
    let dataFd: number | undefined;
    let offset = 0;
    const inits: TensorProto[] = [];
    try {
      this.inits.forEach(({ name, tensor: t }, i) => {
        const rawData = tensorBytes(t, name);
        const proto: TensorProto = { name, dataType: OnnxDataType[t.dtype], dims: t.dims };
        if (opts.externalData && rawData.length >= minBytes) {
          if (dataFd === undefined) {
            dataFd = fs.openSync(dataFile, 'w');
            written.push(dataFile);
          }
          offset = Math.ceil(offset / 4096) * 4096; // page-aligned so ORT can map tensors directly
          fs.writeSync(dataFd, rawData, 0, rawData.length, offset);
          proto.externalData = [
            { key: 'location', value: dataName },
            { key: 'offset', value: String(offset) },
            { key: 'length', value: String(rawData.length) },
          ];
          offset += rawData.length;
        } else {
          proto.rawData = rawData;
        }
        inits.push(proto);
        opts.onProgress?.({ tensorsDone: i + 1, tensorsTotal: this.inits.length, bytesWritten: offset });
      });
    } finally {
      if (dataFd !== undefined) fs.closeSync(dataFd);
    }
    const w = encodeModel(this.buildModel(inits));
    if (w.length > PROTOBUF_LIMIT) {
      throw new Error(`graph ${this.name} is ${w.length} bytes, over the 2 GB protobuf limit: write it with externalData`);
    }
    const fd = fs.openSync(file, 'w');
    try {
      for (const chunk of w.finish()) fs.writeSync(fd, chunk);
    } finally {
      fs.closeSync(fd);
    }
    return written;
  }
}
