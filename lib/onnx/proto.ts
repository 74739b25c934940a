// A minimal protobuf encoder for the parts of onnx.proto this package writes (ModelProto and what it contains).
// Field numbers follow onnx/onnx.proto. Messages are encoded into lists of byte chunks so that large tensor
// payloads are referenced, not copied, until the final write.

/** ONNX TensorProto.DataType values used by this package. */
export const OnnxDataType = {
  float32: 1,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int16: 5,
  int32: 6,
  int64: 7,
  string: 8,
  bool: 9,
  float16: 10,
  float64: 11,
  uint32: 12,
  uint64: 13,
  bfloat16: 16,
} as const;
export type TensorDType = keyof typeof OnnxDataType;

/** Byte size of one element of each fixed-size dtype. */
export const DTYPE_BYTES: Record<Exclude<TensorDType, 'string'>, number> = {
  float32: 4,
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  int32: 4,
  int64: 8,
  bool: 1,
  float16: 2,
  float64: 8,
  uint32: 4,
  uint64: 8,
  bfloat16: 2,
};

const enum AttributeType {
  FLOAT = 1,
  INT = 2,
  STRING = 3,
  TENSOR = 4,
  GRAPH = 5,
  FLOATS = 6,
  INTS = 7,
  STRINGS = 8,
}

export interface OperatorSetId {
  domain: string;
  version: number;
}
export interface StringEntry {
  key: string;
  value: string;
}

export interface TensorProto {
  name: string;
  dataType: number;
  dims: number[];
  /** Little-endian element bytes (ignored when externalData is set). */
  rawData?: Uint8Array;
  /** Where the bytes live instead (data_location = EXTERNAL): location, offset, length. */
  externalData?: StringEntry[];
}

export type Dim = number | string;
export interface ValueInfoProto {
  name: string;
  elemType: number;
  shape?: Dim[];
}

export type AttributeProto =
  | { name: string; type: 'float'; value: number }
  | { name: string; type: 'int'; value: number }
  | { name: string; type: 'string'; value: string }
  | { name: string; type: 'floats'; value: number[] }
  | { name: string; type: 'ints'; value: number[] }
  | { name: string; type: 'strings'; value: string[] }
  | { name: string; type: 'tensor'; value: TensorProto }
  | { name: string; type: 'graph'; value: GraphProto };

export interface NodeProto {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: AttributeProto[];
}

export interface GraphProto {
  name: string;
  nodes: NodeProto[];
  initializers: TensorProto[];
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  valueInfo?: ValueInfoProto[];
}

export interface ModelProto {
  irVersion: number;
  opsetImports: OperatorSetId[];
  producerName: string;
  producerVersion: string;
  graph: GraphProto;
  metadata?: StringEntry[];
}

const textEncoder = new TextEncoder();

/** An encoded message: a list of chunks and their total length. */
export class ProtoWriter {
  readonly chunks: Uint8Array[] = [];
  length = 0;
  private scratch: number[] = [];

  private flushScratch(): void {
    if (this.scratch.length === 0) return;
    this.chunks.push(Uint8Array.from(this.scratch));
    this.length += this.scratch.length;
    this.scratch = [];
  }

  private pushVarint(value: number | bigint): void {
    if (typeof value === 'number' && value >= 0 && Number.isSafeInteger(value)) {
      let v = value;
      while (v >= 0x80) {
        this.scratch.push((v % 0x80) | 0x80);
        v = Math.floor(v / 0x80);
      }
      this.scratch.push(v);
      return;
    }
    // Negative or large values: two's complement over 64 bits (10 bytes for negatives), as protobuf int64 does.
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.scratch.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.scratch.push(Number(v));
  }

  private tag(field: number, wireType: number): void {
    this.pushVarint(field * 8 + wireType);
  }

  varint(field: number, value: number | bigint): this {
    this.tag(field, 0);
    this.pushVarint(value);
    return this;
  }

  float(field: number, value: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.scratch.push(...b);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.tag(field, 2);
    this.pushVarint(data.length);
    if (data.length < 64) {
      for (const x of data) this.scratch.push(x);
    } else {
      this.flushScratch();
      this.chunks.push(data);
      this.length += data.length;
    }
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, textEncoder.encode(value));
  }

  message(field: number, sub: ProtoWriter): this {
    sub.flushScratch();
    this.tag(field, 2);
    this.pushVarint(sub.length);
    this.flushScratch();
    this.chunks.push(...sub.chunks);
    this.length += sub.length;
    return this;
  }

  packedVarints(field: number, values: number[]): this {
    const inner = new ProtoWriter();
    for (const v of values) inner.pushVarint(v);
    return this.message(field, inner);
  }

  packedFloats(field: number, values: number[]): this {
    const b = new Uint8Array(values.length * 4);
    const dv = new DataView(b.buffer);
    values.forEach((v, i) => dv.setFloat32(i * 4, v, true));
    return this.bytes(field, b);
  }

  /** The finished chunks (call once writing is done). */
  finish(): Uint8Array[] {
    this.flushScratch();
    return this.chunks;
  }

  toBytes(): Uint8Array {
    const chunks = this.finish();
    const out = new Uint8Array(this.length);
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}

function encodeStringEntry(e: StringEntry): ProtoWriter {
  return new ProtoWriter().string(1, e.key).string(2, e.value);
}

export function encodeTensor(t: TensorProto): ProtoWriter {
  const w = new ProtoWriter();
  if (t.dims.length > 0) w.packedVarints(1, t.dims);
  w.varint(2, t.dataType);
  w.string(8, t.name);
  if (t.externalData) {
    for (const e of t.externalData) w.message(13, encodeStringEntry(e));
    w.varint(14, 1);
  } else {
    w.bytes(9, t.rawData ?? new Uint8Array(0));
  }
  return w;
}

function encodeValueInfo(v: ValueInfoProto): ProtoWriter {
  const tensorType = new ProtoWriter().varint(1, v.elemType);
  if (v.shape) {
    const shape = new ProtoWriter();
    for (const d of v.shape) {
      const dim = typeof d === 'number' ? new ProtoWriter().varint(1, d) : new ProtoWriter().string(2, d);
      shape.message(1, dim);
    }
    tensorType.message(2, shape);
  }
  const type = new ProtoWriter().message(1, tensorType);
  return new ProtoWriter().string(1, v.name).message(2, type);
}

function encodeAttribute(a: AttributeProto): ProtoWriter {
  const w = new ProtoWriter().string(1, a.name);
  switch (a.type) {
    case 'float':
      w.float(2, a.value).varint(20, AttributeType.FLOAT);
      break;
    case 'int':
      w.varint(3, a.value).varint(20, AttributeType.INT);
      break;
    case 'string':
      w.string(4, a.value).varint(20, AttributeType.STRING);
      break;
    case 'tensor':
      w.message(5, encodeTensor(a.value)).varint(20, AttributeType.TENSOR);
      break;
    case 'graph':
      w.message(6, encodeGraph(a.value)).varint(20, AttributeType.GRAPH);
      break;
    case 'floats':
      w.packedFloats(7, a.value).varint(20, AttributeType.FLOATS);
      break;
    case 'ints':
      w.packedVarints(8, a.value).varint(20, AttributeType.INTS);
      break;
    case 'strings':
      for (const s of a.value) w.string(9, s);
      w.varint(20, AttributeType.STRINGS);
      break;
  }
  return w;
}

function encodeNode(n: NodeProto): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name).string(4, n.opType);
  for (const a of n.attributes) w.message(5, encodeAttribute(a));
  if (n.domain) w.string(7, n.domain);
  return w;
}

export function encodeGraph(g: GraphProto): ProtoWriter {
  const w = new ProtoWriter();
  for (const n of g.nodes) w.message(1, encodeNode(n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, encodeTensor(t));
  for (const v of g.inputs) w.message(11, encodeValueInfo(v));
  for (const v of g.outputs) w.message(12, encodeValueInfo(v));
  for (const v of g.valueInfo ?? []) w.message(13, encodeValueInfo(v));
  return w;
}

export function encodeModel(m: ModelProto): ProtoWriter {
  const w = new ProtoWriter().varint(1, m.irVersion).string(2, m.producerName).string(3, m.producerVersion);
  w.message(7, encodeGraph(m.graph));
  for (const o of m.opsetImports) w.message(8, new ProtoWriter().string(1, o.domain).varint(2, o.version));
  for (const e of m.metadata ?? []) w.message(14, encodeStringEntry(e));
  return w;
}
