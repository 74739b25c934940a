// A small pickle protocol-2 writer that emits what Python's pickler emits for torch.save of a state dict:
// GLOBAL for classes/functions (memoized, so repeats become BINGET), BINUNICODE strings (each followed by
// BINPUT; torch's constant strings 'storage' and 'cpu' are one object each, so repeats become BINGET),
// BININT1/BININT2/BININT/LONG1 by size, TUPLE1-3 or MARK…TUPLE, EMPTY_DICT + SETITEM(S), REDUCE, BINPERSID.

/** A reference to a Python global, e.g. new Global('collections', 'OrderedDict'). */
export class Global {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
}
/** Calls a global with arguments (pickled as GLOBAL, args tuple, REDUCE). */
export class Call {
  constructor(
    readonly fn: Global,
    readonly args: PyValue[],
  ) {}
}
/** A persistent id (pickled as the value, then BINPERSID). */
export class PersistentId {
  constructor(readonly id: PyValue) {}
}
/** An OrderedDict (a Map is pickled as a plain dict). */
export class OrderedDict {
  constructor(readonly entries: [PyValue, PyValue][]) {}
}
/** A Python tuple (JS arrays are pickled as lists). */
export class Tuple {
  constructor(readonly items: PyValue[]) {}
}
/** A Python float even when the value is a whole number. */
export class Float {
  constructor(readonly value: number) {}
}

export type PyValue =
  null | boolean | number | string | Buffer | PyValue[] | Map<PyValue, PyValue> | Global | Call | PersistentId | OrderedDict | Tuple | Float;

/** Strings that torch passes as one shared object, so the pickler memoizes them. */
const SHARED_STRINGS = new Set(['storage', 'cpu']);
const BATCH = 1000;

export class PickleWriter {
  private readonly parts: Buffer[] = [];
  private readonly memo = new Map<string, number>();
  private memoCount = 0;

  static dump(value: PyValue): Buffer {
    const w = new PickleWriter();
    w.bytes(0x80, 2);
    w.save(value);
    w.bytes(0x2e);
    return Buffer.concat(w.parts);
  }

  private save(v: PyValue): void {
    if (v === null) this.bytes(0x4e);
    else if (v === true) this.bytes(0x88);
    else if (v === false) this.bytes(0x89);
    else if (typeof v === 'number') {
      if (Number.isInteger(v)) this.int(v);
      else this.float(v);
    } else if (v instanceof Float) this.float(v.value);
    else if (typeof v === 'string') this.string(v);
    else if (Buffer.isBuffer(v)) throw new Error('bytes are not needed by these tests');
    else if (v instanceof Global) this.global(v);
    else if (v instanceof Tuple) this.tuple(v.items);
    else if (Array.isArray(v)) this.list(v);
    else if (v instanceof Map) this.dict([...v.entries()]);
    else if (v instanceof OrderedDict) this.orderedDict(v.entries);
    else if (v instanceof Call) this.call(v);
    else if (v instanceof PersistentId) {
      this.save(v.id);
      this.bytes(0x51);
    } else throw new Error(`cannot pickle ${String(v)}`);
  }

  private int(v: number): void {
    if (v >= 0 && v <= 0xff) this.bytes(0x4b, v);
    else if (v >= 0 && v <= 0xffff) this.bytes(0x4d, v & 0xff, v >> 8);
    else if (v >= -(2 ** 31) && v < 2 ** 31) {
      const b = Buffer.alloc(5);
      b[0] = 0x4a;
      b.writeInt32LE(v, 1);
      this.parts.push(b);
    } else {
      let x = BigInt(v);
      const out: number[] = [];
      while (x !== 0n && x !== -1n) {
        out.push(Number(x & 0xffn));
        x >>= 8n;
      }
      if (v > 0 && out[out.length - 1] & 0x80) out.push(0);
      if (v < 0 && !(out[out.length - 1] & 0x80)) out.push(0xff);
      this.bytes(0x8a, out.length, ...out);
    }
  }

  private float(v: number): void {
    const b = Buffer.alloc(9);
    b[0] = 0x47;
    b.writeDoubleBE(v, 1);
    this.parts.push(b);
  }

  private string(v: string): void {
    const key = `str:${v}`;
    if (SHARED_STRINGS.has(v) && this.get(key)) return;
    const utf8 = Buffer.from(v, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(utf8.length);
    this.parts.push(Buffer.from([0x58]), len, utf8);
    this.put(SHARED_STRINGS.has(v) ? key : undefined);
  }

  private global(g: Global): void {
    const key = `global:${g.module}.${g.name}`;
    if (this.get(key)) return;
    this.parts.push(Buffer.from([0x63]), Buffer.from(`${g.module}\n${g.name}\n`, 'utf8'));
    this.put(key);
  }

  private tuple(items: PyValue[]): void {
    if (items.length === 0) return this.bytes(0x29);
    if (items.length <= 3) {
      items.forEach((i) => this.save(i));
      this.bytes(0x84 + items.length);
    } else {
      this.bytes(0x28);
      items.forEach((i) => this.save(i));
      this.bytes(0x74);
    }
    this.put();
  }

  private list(items: PyValue[]): void {
    this.bytes(0x5d);
    this.put();
    for (let i = 0; i < items.length; i += BATCH) {
      const batch = items.slice(i, i + BATCH);
      if (batch.length === 1) {
        this.save(batch[0]);
        this.bytes(0x61);
      } else {
        this.bytes(0x28);
        batch.forEach((x) => this.save(x));
        this.bytes(0x65);
      }
    }
  }

  private dict(entries: [PyValue, PyValue][]): void {
    this.bytes(0x7d);
    this.put();
    this.setItems(entries);
  }

  /** OrderedDict.__reduce__ → (OrderedDict, (), None, None, items): GLOBAL, EMPTY_TUPLE, REDUCE, items. */
  private orderedDict(entries: [PyValue, PyValue][]): void {
    this.global(new Global('collections', 'OrderedDict'));
    this.bytes(0x29, 0x52);
    this.put();
    this.setItems(entries);
  }

  private setItems(entries: [PyValue, PyValue][]): void {
    for (let i = 0; i < entries.length; i += BATCH) {
      const batch = entries.slice(i, i + BATCH);
      if (batch.length === 1) {
        this.save(batch[0][0]);
        this.save(batch[0][1]);
        this.bytes(0x73);
      } else {
        this.bytes(0x28);
        for (const [k, v] of batch) {
          this.save(k);
          this.save(v);
        }
        this.bytes(0x75);
      }
    }
  }

  private call(c: Call): void {
    this.global(c.fn);
    this.tuple(c.args);
    this.bytes(0x52);
    this.put();
  }

  /** BINPUT (or LONG_BINPUT) of the value just written; `key` lets later identical values use BINGET. */
  private put(key?: string): void {
    const slot = this.memoCount++;
    if (key) this.memo.set(key, slot);
    if (slot < 256) this.bytes(0x71, slot);
    else {
      const b = Buffer.alloc(5);
      b[0] = 0x72;
      b.writeUInt32LE(slot, 1);
      this.parts.push(b);
    }
  }

  private get(key: string): boolean {
    const slot = this.memo.get(key);
    if (slot === undefined) return false;
    if (slot < 256) this.bytes(0x68, slot);
    else {
      const b = Buffer.alloc(5);
      b[0] = 0x6a;
      b.writeUInt32LE(slot, 1);
      this.parts.push(b);
    }
    return true;
  }

  private bytes(...b: number[]): void {
    this.parts.push(Buffer.from(b));
  }
}
