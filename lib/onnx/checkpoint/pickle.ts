// A minimal, safe unpickler: it interprets the pickle opcodes that plain data and torch state dicts use
// and never executes code. Every GLOBAL / STACK_GLOBAL is looked up in the caller's allow-list; any other
// global (os.system, builtins.eval, …) is rejected with an error that names it, before anything is called.
// Allowed globals are plain TypeScript functions or values, so REDUCE can only run code written here.
//
// Values: None → null, bool, int → number (bigint-sized ints are rejected), float → number, str → string,
// bytes → Buffer, tuple/list → array, dict → Map (keeps order and non-string keys).

export type PickleValue = unknown;

/** What an allow-listed global turns into: a function REDUCE may call, or a plain value. */
export type AllowedGlobal =
  | { kind: 'callable'; call: (args: PickleValue[]) => PickleValue; build?: (obj: PickleValue, state: PickleValue) => void }
  | { kind: 'value'; value: PickleValue };

export interface UnpickleOptions {
  /** Allowed globals keyed 'module.name', e.g. 'collections.OrderedDict'. */
  globals: Map<string, AllowedGlobal>;
  /** Resolves a BINPERSID id (torch: ('storage', storage_type, key, location, numel)). */
  persistentLoad?: (pid: PickleValue) => PickleValue;
  /** Named in error messages. */
  source?: string;
}

/** A callable global on the stack, waiting for REDUCE. */
class GlobalRef {
  constructor(
    readonly fullName: string,
    readonly allowed: AllowedGlobal & { kind: 'callable' },
  ) {}
}

const MARK = Symbol('mark');

/** Thrown when the data ends inside a pickle, so a caller reading a file in pieces knows to read more. */
export class PickleTruncatedError extends Error {}

export function unpickle(data: Buffer, options: UnpickleOptions): PickleValue {
  return unpickleAt(data, 0, options).value;
}

/** Unpickles the pickle that starts at `offset`; `end` is the offset just after its STOP. */
export function unpickleAt(data: Buffer, offset: number, options: UnpickleOptions): { value: PickleValue; end: number } {
  const unpickler = new Unpickler(data, options, offset);
  return { value: unpickler.run(), end: unpickler.position };
}

class Unpickler {
  private pos = 0;
  private stack: PickleValue[] = [];
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, PickleValue>();
  /** Objects made by an allowed callable remember it, so BUILD can ask it how to apply state. */
  private readonly builtBy = new WeakMap<object, GlobalRef>();
  private readonly where: string;

  constructor(
    private readonly data: Buffer,
    private readonly options: UnpickleOptions,
    start: number,
  ) {
    this.where = options.source ? `${options.source}: ` : '';
    this.pos = start;
  }

  get position(): number {
    return this.pos;
  }

  run(): PickleValue {
    for (;;) {
      if (this.pos >= this.data.length) throw new PickleTruncatedError(`${this.where}pickle ended without STOP`);
      const at = this.pos;
      const op = this.data[this.pos++];
      switch (op) {
        case 0x80: // PROTO
          if (this.u8() > 5) this.fail('pickle protocol above 5');
          break;
        case 0x95: // FRAME: a length prefix only; the frame's opcodes follow inline
          this.take(8);
          break;
        case 0x2e: // STOP
          if (this.stack.length !== 1) this.fail(`STOP with ${this.stack.length} values on the stack`);
          return this.stack[0];
        case 0x28: // MARK
          this.marks.push(this.stack.length);
          this.stack.push(MARK);
          break;
        case 0x4e: // NONE
          this.stack.push(null);
          break;
        case 0x88: // NEWTRUE
          this.stack.push(true);
          break;
        case 0x89: // NEWFALSE
          this.stack.push(false);
          break;
        case 0x4b: // BININT1
          this.stack.push(this.u8());
          break;
        case 0x4d: // BININT2
          this.stack.push(this.take(2).readUInt16LE(0));
          break;
        case 0x4a: // BININT
          this.stack.push(this.take(4).readInt32LE(0));
          break;
        case 0x8a: // LONG1
          this.stack.push(this.long(this.u8()));
          break;
        case 0x8b: // LONG4
          this.stack.push(this.long(this.take(4).readUInt32LE(0)));
          break;
        case 0x47: // BINFLOAT (big-endian double)
          this.stack.push(this.take(8).readDoubleBE(0));
          break;
        case 0x58: // BINUNICODE
          this.stack.push(this.take(this.take(4).readUInt32LE(0)).toString('utf8'));
          break;
        case 0x8c: // SHORT_BINUNICODE
          this.stack.push(this.take(this.u8()).toString('utf8'));
          break;
        case 0x8d: // BINUNICODE8
          this.stack.push(this.take(this.size8()).toString('utf8'));
          break;
        case 0x43: // SHORT_BINBYTES
          this.stack.push(Buffer.from(this.take(this.u8())));
          break;
        case 0x42: // BINBYTES
          this.stack.push(Buffer.from(this.take(this.take(4).readUInt32LE(0))));
          break;
        case 0x8e: // BINBYTES8
          this.stack.push(Buffer.from(this.take(this.size8())));
          break;
        case 0x29: // EMPTY_TUPLE
        case 0x5d: // EMPTY_LIST
          this.stack.push([]);
          break;
        case 0x7d: // EMPTY_DICT
          this.stack.push(new Map());
          break;
        case 0x74: // TUPLE
        case 0x6c: // LIST
          this.stack.push(this.popMark());
          break;
        case 0x85: // TUPLE1
        case 0x86: // TUPLE2
        case 0x87: // TUPLE3
          this.stack.push(this.popN(op - 0x84));
          break;
        case 0x64: // DICT
          this.stack.push(this.setItems(new Map(), this.popMark()));
          break;
        case 0x61: // APPEND
          this.list(this.peek(1)).push(this.pop());
          break;
        case 0x65: {
          // APPENDS
          const items = this.popMark();
          this.list(this.peek(0)).push(...items);
          break;
        }
        case 0x73: {
          // SETITEM
          const [key, value] = this.popN(2);
          this.setItems(this.peek(0), [key, value]);
          break;
        }
        case 0x75: {
          // SETITEMS
          const items = this.popMark();
          this.setItems(this.peek(0), items);
          break;
        }
        case 0x30: // POP (of a MARK right after it, too, as CPython's metastack does)
          if (this.stack[this.stack.length - 1] === MARK) this.popMark();
          else this.pop();
          break;
        case 0x31: // POP_MARK
          this.popMark();
          break;
        case 0x32: // DUP
          this.stack.push(this.peek(0));
          break;
        case 0x63: {
          // GLOBAL "module\nname\n"
          const module = this.line();
          const name = this.line();
          this.stack.push(this.resolveGlobal(module, name));
          break;
        }
        case 0x93: {
          // STACK_GLOBAL
          const [module, name] = this.popN(2);
          if (typeof module !== 'string' || typeof name !== 'string') this.fail('STACK_GLOBAL needs two strings');
          this.stack.push(this.resolveGlobal(module, name));
          break;
        }
        case 0x51: {
          // BINPERSID
          const pid = this.pop();
          if (!this.options.persistentLoad) this.fail('pickle has a persistent id but none are expected here');
          this.stack.push(this.options.persistentLoad(pid));
          break;
        }
        case 0x52: {
          // REDUCE
          const args = this.pop();
          const callable = this.pop();
          if (!(callable instanceof GlobalRef)) this.fail(`REDUCE on something that is not an allowed callable (at byte ${at})`);
          if (!Array.isArray(args)) this.fail(`REDUCE of ${callable.fullName} without an argument tuple`);
          const result = callable.allowed.call(args);
          if (result && typeof result === 'object') this.builtBy.set(result, callable);
          this.stack.push(result);
          break;
        }
        case 0x62: {
          // BUILD
          const state = this.pop();
          const obj = this.peek(0);
          const maker = obj && typeof obj === 'object' ? this.builtBy.get(obj) : undefined;
          if (!maker?.allowed.build) this.fail(`BUILD on an object that does not accept state (at byte ${at})`);
          maker.allowed.build(obj, state);
          break;
        }
        case 0x94: // MEMOIZE
          this.memo.set(this.memo.size, this.peek(0));
          break;
        case 0x71: // BINPUT
          this.memo.set(this.u8(), this.peek(0));
          break;
        case 0x72: // LONG_BINPUT
          this.memo.set(this.take(4).readUInt32LE(0), this.peek(0));
          break;
        case 0x68: // BINGET
          this.stack.push(this.memoGet(this.u8()));
          break;
        case 0x6a: // LONG_BINGET
          this.stack.push(this.memoGet(this.take(4).readUInt32LE(0)));
          break;
        default:
          this.fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, '0')} at byte ${at}`);
      }
    }
  }

  private resolveGlobal(module: string, name: string): PickleValue {
    const fullName = `${module}.${name}`;
    const allowed = this.options.globals.get(fullName);
    if (!allowed) {
      this.fail(`pickle refers to global '${fullName}', which is not allowed (only weights can be loaded; nothing is executed)`);
    }
    return allowed.kind === 'value' ? allowed.value : new GlobalRef(fullName, allowed);
  }

  private setItems(target: PickleValue, items: PickleValue[]): Map<PickleValue, PickleValue> {
    if (!(target instanceof Map)) this.fail('SETITEM(S) on something that is not a dict');
    if (items.length % 2) this.fail('SETITEMS with an odd number of values');
    for (let i = 0; i < items.length; i += 2) target.set(items[i], items[i + 1]);
    return target;
  }

  private list(target: PickleValue): PickleValue[] {
    if (!Array.isArray(target)) this.fail('APPEND(S) on something that is not a list');
    return target;
  }

  private popMark(): PickleValue[] {
    const mark = this.marks.pop();
    if (mark === undefined) this.fail('pickle pops a MARK that was never set');
    const items = this.stack.splice(mark);
    items.shift();
    return items;
  }

  private popN(n: number): PickleValue[] {
    if (this.stack.length < n) this.fail('pickle stack underflow');
    const items = this.stack.splice(this.stack.length - n);
    if (items.includes(MARK)) this.fail('pickle uses a MARK as a value');
    return items;
  }

  private pop(): PickleValue {
    return this.popN(1)[0];
  }

  private peek(depth: number): PickleValue {
    const value = this.stack[this.stack.length - 1 - depth];
    if (this.stack.length <= depth || value === MARK) this.fail('pickle stack underflow');
    return value;
  }

  private memoGet(index: number): PickleValue {
    if (!this.memo.has(index)) this.fail(`pickle reads memo slot ${index}, which was never written`);
    return this.memo.get(index);
  }

  private long(length: number): number {
    const bytes = this.take(length);
    if (length === 0) return 0;
    let v = 0n;
    for (let i = length - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]);
    if (bytes[length - 1] & 0x80) v -= 1n << BigInt(8 * length);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      this.fail(`pickle integer ${v} is too large`);
    }
    return Number(v);
  }

  private size8(): number {
    const v = this.take(8).readBigUInt64LE(0);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`pickle length ${v} is too large`);
    return Number(v);
  }

  private line(): string {
    const end = this.data.indexOf(0x0a, this.pos);
    if (end < 0) throw new PickleTruncatedError(`${this.where}GLOBAL name is not terminated by a newline`);
    const text = this.data.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return text;
  }

  private u8(): number {
    return this.take(1)[0];
  }

  private take(n: number): Buffer {
    if (this.pos + n > this.data.length) throw new PickleTruncatedError(`${this.where}pickle ends in the middle of an opcode`);
    const out = this.data.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  private fail(message: string): never {
    throw new Error(`${this.where}${message}`);
  }
}
