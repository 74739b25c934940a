// The token-embedding table of an embed_tokens graph that is one Gather of an fp32/fp16 [vocab, hidden] initializer
// (the graph this project writes, and transformers.js's exports): rows are read straight from the file (inline
// raw_data or external data), so a decode step's one-token lookup needs no onnxruntime run. The file is scanned
// with positional reads: large byte fields are skipped, never loaded, and only the rows asked for are read.
import * as fs from 'fs';
import * as path from 'path';
import { halfArrayToFloat } from '../util/float16';
import { EMBED_IO } from './graph-io';

/** ONNX TensorProto data types the table may have (onnx.proto: FLOAT = 1, FLOAT16 = 10). */
const TABLE_TYPES = { 1: 'float32', 10: 'float16' } as const;

const WIRE = { varint: 0, i64: 1, bytes: 2, i32: 5 } as const;

/** Forward-only protobuf field reader over a byte range of an open file. */
class FieldReader {
  private chunk = Buffer.alloc(0);
  private chunkStart = 0;

  constructor(
    private readonly fd: number,
    public pos: number,
    private readonly end: number,
  ) {}

  get done(): boolean {
    return this.pos >= this.end;
  }

  private byte(): number {
    if (this.pos >= this.end) throw new Error('truncated protobuf');
    const at = this.pos - this.chunkStart;
    if (at < 0 || at >= this.chunk.length) {
      this.chunk = Buffer.alloc(Math.min(65536, this.end - this.pos));
      fs.readSync(this.fd, this.chunk, 0, this.chunk.length, this.pos);
      this.chunkStart = this.pos;
    }
    this.pos++;
    return this.chunk[this.pos - 1 - this.chunkStart];
  }

  varint(): number {
    let value = 0;
    for (let scale = 1; ; scale *= 128) {
      const b = this.byte();
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
    }
  }

  /** The next field's number and wire type, and for length-delimited fields the payload's file range. */
  private next(): { field: number; wire: number; length: number } {
    const tag = this.varint();
    const wire = tag % 8;
    return { field: Math.floor(tag / 8), wire, length: wire === WIRE.bytes ? this.varint() : 0 };
  }

  private skip(wire: number, length: number): void {
    if (wire === WIRE.varint) this.varint();
    else if (wire === WIRE.i64) this.pos += 8;
    else if (wire === WIRE.bytes) this.pos += length;
    else if (wire === WIRE.i32) this.pos += 4;
    else throw new Error(`unsupported protobuf wire type ${wire}`);
  }

  text(length: number): string {
    const bytes = Buffer.alloc(length);
    fs.readSync(this.fd, bytes, 0, length, this.pos);
    this.pos += length;
    return bytes.toString('utf8');
  }

  sub(length: number): FieldReader {
    const r = new FieldReader(this.fd, this.pos, this.pos + length);
    this.pos += length;
    return r;
  }

  /** Calls `visit` per field; a field it does not consume is skipped. */
  each(visit: (field: number, wire: number, length: number) => boolean): void {
    while (!this.done) {
      const { field, wire, length } = this.next();
      if (!visit(field, wire, length)) this.skip(wire, length);
    }
  }
}

interface Initializer {
  dims: number[];
  dataType: number;
  /** Inline raw_data: its file range. */
  raw?: { offset: number; length: number };
  external: Record<string, string>;
}

interface GraphSummary {
  nodes: Array<{ opType: string; domain: string; inputs: string[]; outputs: string[]; axis: number }>;
  initializers: Map<string, Initializer>;
  inputs: string[];
  outputs: string[];
}

function readEntry(r: FieldReader): [string, string] {
  const entry: [string, string] = ['', ''];
  r.each((field, wire, length) => {
    if (wire !== WIRE.bytes || (field !== 1 && field !== 2)) return false;
    entry[field - 1] = r.text(length);
    return true;
  });
  return entry;
}

function readTensor(r: FieldReader): [string, Initializer] {
  let name = '';
  const t: Initializer = { dims: [], dataType: 0, external: {} };
  r.each((field, wire, length) => {
    if (field === 1 && wire === WIRE.varint) t.dims.push(r.varint());
    else if (field === 1 && wire === WIRE.bytes) {
      const packed = r.sub(length);
      while (!packed.done) t.dims.push(packed.varint());
    } else if (field === 2 && wire === WIRE.varint) t.dataType = r.varint();
    else if (field === 8 && wire === WIRE.bytes) name = r.text(length);
    else if (field === 9 && wire === WIRE.bytes) {
      t.raw = { offset: r.pos, length };
      r.pos += length;
    } else if (field === 13 && wire === WIRE.bytes) {
      const [k, v] = readEntry(r.sub(length));
      t.external[k] = v;
    } else return false;
    return true;
  });
  return [name, t];
}

function readNode(r: FieldReader): GraphSummary['nodes'][number] {
  const node = { opType: '', domain: '', inputs: [] as string[], outputs: [] as string[], axis: 0 };
  r.each((field, wire, length) => {
    if (wire !== WIRE.bytes) return false;
    if (field === 1) node.inputs.push(r.text(length));
    else if (field === 2) node.outputs.push(r.text(length));
    else if (field === 4) node.opType = r.text(length);
    else if (field === 7) node.domain = r.text(length);
    else if (field === 5) {
      // AttributeProto: name = 1, i = 3 (Gather's only attribute is the int `axis`).
      const a = r.sub(length);
      let attr = '';
      let value = 0;
      a.each((f, w, l) => {
        if (f === 1 && w === WIRE.bytes) attr = a.text(l);
        else if (f === 3 && w === WIRE.varint) value = a.varint();
        else return false;
        return true;
      });
      if (attr === 'axis') node.axis = value;
    } else return false;
    return true;
  });
  return node;
}

/** ValueInfoProto's name (field 1). */
function readName(r: FieldReader): string {
  let name = '';
  r.each((field, wire, length) => {
    if (field !== 1 || wire !== WIRE.bytes) return false;
    name = r.text(length);
    return true;
  });
  return name;
}

function readGraph(r: FieldReader): GraphSummary {
  const g: GraphSummary = { nodes: [], initializers: new Map(), inputs: [], outputs: [] };
  r.each((field, wire, length) => {
    if (wire !== WIRE.bytes) return false;
    if (field === 1) g.nodes.push(readNode(r.sub(length)));
    else if (field === 5) g.initializers.set(...readTensor(r.sub(length)));
    else if (field === 11) g.inputs.push(readName(r.sub(length)));
    else if (field === 12) g.outputs.push(readName(r.sub(length)));
    else return false;
    return true;
  });
  return g;
}

/** Memory for rows kept after their first read: a few thousand distinct tokens at the 0.5b's width. */
const ROW_CACHE_BYTES = 16 * 2 ** 20;

/** Where the table's rows are: an open file, the byte offset of row 0, and the row geometry. close() when done. */
export class EmbedTable {
  private readonly fd: number;
  private readonly rowBytes: number;
  /** Rows read so far (a caption's tokens repeat), as float32. */
  private readonly kept = new Map<number, Float32Array>();

  constructor(
    readonly file: string,
    private readonly offset: number,
    readonly type: 'float32' | 'float16',
    readonly vocabSize: number,
    readonly hiddenSize: number,
  ) {
    this.rowBytes = hiddenSize * (type === 'float32' ? 4 : 2);
    this.fd = fs.openSync(file, 'r');
  }

  /** Rows `ids` as float32 [ids.length × hidden] (ids must be in range): the bytes ORT's Gather would copy. */
  rows(ids: ArrayLike<number>): Float32Array {
    const hidden = this.hiddenSize;
    const out = new Float32Array(ids.length * hidden);
    for (let i = 0; i < ids.length; i++) out.set(this.row(ids[i]), i * hidden);
    return out;
  }

  /** One row, from memory after its first read while the kept rows stay under ROW_CACHE_BYTES. */
  private row(id: number): Float32Array {
    const kept = this.kept.get(id);
    if (kept) return kept;
    const raw = new Uint8Array(this.rowBytes);
    const got = fs.readSync(this.fd, raw, 0, this.rowBytes, this.offset + id * this.rowBytes);
    if (got !== this.rowBytes) throw new Error(`embedding table ${this.file}: short read of row ${id}`);
    const row = this.type === 'float32' ? new Float32Array(raw.buffer) : halfArrayToFloat(new Uint16Array(raw.buffer));
    if ((this.kept.size + 1) * row.byteLength <= ROW_CACHE_BYTES) this.kept.set(id, row);
    return row;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

function scanGraph(file: string): GraphSummary | null {
  const fd = fs.openSync(file, 'r');
  try {
    const model = new FieldReader(fd, 0, fs.fstatSync(fd).size);
    let graph: GraphSummary | null = null;
    model.each((field, wire, length) => {
      if (field !== 7 || wire !== WIRE.bytes) return false;
      graph = readGraph(model.sub(length));
      return true;
    });
    return graph;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The table of `file` when its graph is exactly input_ids → Gather(axis 0) of a [vocab, hidden] fp32/fp16
 * initializer (→ Identity renames) → inputs_embeds, stored as raw bytes (inline or external); null for any other
 * graph (a quantized table, a Cast or scale after the Gather), which then keeps running in onnxruntime.
 */
export function openEmbedTable(file: string): EmbedTable | null {
  const g = scanGraph(file);
  if (!g || g.inputs.join() !== EMBED_IO.inputIds || g.outputs.join() !== EMBED_IO.inputsEmbeds) return null;
  const producer = (value: string) => g.nodes.find((n) => n.outputs[0] === value);
  const is = (n: GraphSummary['nodes'][number], op: string) => n.opType === op && (n.domain === '' || n.domain === 'ai.onnx');
  let node = producer(EMBED_IO.inputsEmbeds);
  let used = 1;
  for (; node && is(node, 'Identity'); used++) node = producer(node.inputs[0]);
  if (!node || used !== g.nodes.length || !is(node, 'Gather') || node.axis !== 0) return null;
  if (node.inputs[1] !== EMBED_IO.inputIds) return null;
  const table = g.initializers.get(node.inputs[0]);
  const type = table && TABLE_TYPES[table.dataType as keyof typeof TABLE_TYPES];
  if (!table || !type || table.dims.length !== 2) return null;
  const [vocab, hidden] = table.dims;
  const bytes = vocab * hidden * (type === 'float32' ? 4 : 2);
  if (table.raw) return table.raw.length === bytes ? new EmbedTable(path.resolve(file), table.raw.offset, type, vocab, hidden) : null;
  const { location, offset = '0', length = String(bytes) } = table.external;
  if (!location || Number(length) !== bytes) return null;
  const dir = path.dirname(path.resolve(file));
  const dataFile = path.resolve(dir, location);
  if (path.relative(dir, dataFile).startsWith('..') || !fs.existsSync(dataFile)) return null;
  return new EmbedTable(dataFile, Number(offset), type, vocab, hidden);
}
