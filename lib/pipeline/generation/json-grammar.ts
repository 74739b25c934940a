// An incremental, byte-level recogniser for compact JSON that matches a compiled schema (json-schema.ts).
//
// A parse state is a small set of stacks (more than one only where anyOf or a number literal leaves the choice
// open). A stack is a chain of immutable frames: the top frame is what is being read, its parent is what comes
// after it (a container already moved past the value, or the end of the document). Feeding one byte gives the next
// state; an empty state means the byte cannot continue any document that matches. Frames remember their last
// result, so alternatives that rejoin the same continuation give the same frame object and are merged.
import type { PatternMachine } from './json-pattern';

/** The compiled form of a schema (json-schema.ts builds it) that the recogniser walks. */
export type GrammarNode =
  | { kind: 'any' }
  | { kind: 'object'; properties: PropertyRule[]; additional: GrammarNode | null }
  | { kind: 'array'; items: GrammarNode; minItems: number; maxItems: number }
  | { kind: 'string'; minLength: number; maxLength: number; pattern: PatternMachine | null }
  | { kind: 'number'; integer: boolean; bounds: NumberBounds | null }
  /** Exact JSON texts (enum, const, true, false, null), compact, as UTF-8 bytes. */
  | { kind: 'literal'; texts: Uint8Array[] }
  | { kind: 'anyOf'; options: GrammarNode[] };

export interface PropertyRule {
  name: string;
  /** The name as it appears between the quotes in compact JSON (JSON.stringify's escapes), as UTF-8 bytes. */
  key: Uint8Array;
  node: GrammarNode;
  required: boolean;
}

export interface NumberBounds {
  min: number;
  minExclusive: boolean;
  max: number;
  maxExclusive: boolean;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
/** Digits before the point and after it, at most (doubles hold 15 significant digits exactly). */
const MAX_DIGITS = 15;
const MAX_EXPONENT_DIGITS = 2; // |value| < 1e115: JSON.parse never gives Infinity

const encoder = new TextEncoder();
const ANY_NODE: GrammarNode = { kind: 'any' };
const ANY_VALUE_OPTIONS: GrammarNode[] = [
  { kind: 'object', properties: [], additional: ANY_NODE },
  { kind: 'array', items: ANY_NODE, minItems: 0, maxItems: Infinity },
  { kind: 'string', minLength: 0, maxLength: Infinity, pattern: null },
  { kind: 'number', integer: false, bounds: null },
  { kind: 'literal', texts: ['true', 'false', 'null'].map((t) => encoder.encode(t)) },
];

const ANY_KEY: GrammarNode & { kind: 'string' } = { kind: 'string', minLength: 0, maxLength: Infinity, pattern: null };

export abstract class Frame {
  private lastByte = -1;
  private lastResult: Frame[] = [];

  constructor(readonly parent: Frame | null) {}

  /** The frames that can follow this one after byte b (none: b cannot come next). */
  next(b: number): Frame[] {
    if (b !== this.lastByte) {
      const out: Frame[] = [];
      this.feed(b, out);
      this.lastByte = b;
      this.lastResult = out;
    }
    return this.lastResult;
  }

  protected abstract feed(b: number, out: Frame[]): void;

  /** True when the value being read may end here (its parent then reads what follows). */
  canEnd(): boolean {
    return false;
  }

  /** True when the document may end here. */
  complete(): boolean {
    return this.canEnd() && this.parent !== null && this.parent.complete();
  }
}

function push(out: Frame[], f: Frame): void {
  if (!out.includes(f)) out.push(f);
}

/** After the document: nothing more. */
class DocumentEnd extends Frame {
  constructor() {
    super(null);
  }

  protected feed(): void {}

  override complete(): boolean {
    return true;
  }
}

/** Before the document: one optional space or newline (a SentencePiece "▁{" token), then the value. */
class DocumentStart extends Frame {
  constructor(private readonly value: ValueStart) {
    super(null);
  }

  protected feed(b: number, out: Frame[]): void {
    if (b === 0x20 || b === 0x0a) push(out, this.value);
    for (const f of this.value.next(b)) push(out, f);
  }
}

/** A value of `node` is about to start. */
class ValueStart extends Frame {
  constructor(
    readonly node: GrammarNode,
    parent: Frame,
  ) {
    super(parent);
  }

  protected feed(b: number, out: Frame[]): void {
    startValue(this.node, this.parent!, b, out);
  }
}

function startValue(node: GrammarNode, parent: Frame, b: number, out: Frame[]): void {
  switch (node.kind) {
    case 'any':
      for (const option of ANY_VALUE_OPTIONS) startValue(option, parent, b, out);
      return;
    case 'anyOf':
      for (const option of node.options) startValue(option, parent, b, out);
      return;
    case 'object':
      if (b === 0x7b) push(out, new ObjectFrame(node, parent, ObjectPhase.Open, new Array(node.properties.length).fill(false), null));
      return;
    case 'array':
      if (b === 0x5b) push(out, new ArrayFrame(node, parent, ArrayPhase.Open, 0));
      return;
    case 'string':
      if (b === QUOTE) push(out, new StringFrame(node, parent, 0, node.pattern?.start ?? null, TextState.START));
      return;
    case 'number':
      new NumberFrame(node.integer, node.bounds, parent, NumberPhase.Start, false, '', '', 0).feedInto(b, out);
      return;
    case 'literal':
      new LiteralFrame(node.texts, 0, parent).feedInto(b, out);
      return;
  }
}

// ---- objects -------------------------------------------------------------------------------------------------

const enum ObjectPhase {
  /** After "{". */
  Open,
  /** After a key: ":" comes next, then the value of `pending`. */
  KeyRead,
  /** After a value: "," or "}". */
  ValueRead,
  /** After ",": a key. */
  Comma,
}

type ObjectNode = Extract<GrammarNode, { kind: 'object' }>;

class ObjectFrame extends Frame {
  constructor(
    readonly node: ObjectNode,
    parent: Frame,
    readonly phase: ObjectPhase,
    readonly seen: readonly boolean[],
    /** The value's schema after a key. */
    readonly pending: GrammarNode | null,
  ) {
    super(parent);
  }

  private mayClose(): boolean {
    return this.node.properties.every((p, i) => !p.required || this.seen[i]);
  }

  private mayTakeKey(): boolean {
    return this.node.additional !== null || this.seen.some((s) => !s);
  }

  protected feed(b: number, out: Frame[]): void {
    switch (this.phase) {
      case ObjectPhase.Open:
      case ObjectPhase.Comma:
        if (b === QUOTE && this.node.properties.length === 0 && this.node.additional !== null) {
          // Any key: read it as plain string text (the fast path for string content applies).
          push(out, new StringFrame(ANY_KEY, this.afterKey(-1), 0, null, TextState.START));
        } else if (b === QUOTE && this.mayTakeKey()) push(out, KeyFrame.open(this));
        else if (b === 0x7d && this.phase === ObjectPhase.Open && this.mayClose()) push(out, this.parent!);
        return;
      case ObjectPhase.KeyRead:
        if (b === COLON) push(out, new ValueStart(this.pending!, new ObjectFrame(this.node, this.parent!, ObjectPhase.ValueRead, this.seen, null)));
        return;
      case ObjectPhase.ValueRead:
        if (b === COMMA && this.mayTakeKey()) push(out, new ObjectFrame(this.node, this.parent!, ObjectPhase.Comma, this.seen, null));
        else if (b === 0x7d && this.mayClose()) push(out, this.parent!);
        return;
    }
  }

  /** The object after the key `property` (an index, or -1 for another key) was read. */
  afterKey(property: number): ObjectFrame {
    const seen = property >= 0 ? this.seen.map((s, i) => s || i === property) : this.seen;
    const node = property >= 0 ? this.node.properties[property].node : this.node.additional!;
    return new ObjectFrame(this.node, this.parent!, ObjectPhase.KeyRead, seen, node);
  }
}

/**
 * An object key. Declared, unseen property names are matched byte by byte against their compact JSON form; when the
 * object takes other keys too, any key is read (no \u escapes, so a name has one spelling) and looked up at its end.
 */
class KeyFrame extends Frame {
  constructor(
    private readonly object: ObjectFrame,
    private readonly candidates: readonly number[],
    /** Bytes read so far (as char codes). */
    private readonly raw: string,
    private readonly text: TextState,
  ) {
    super(object);
  }

  static open(object: ObjectFrame): KeyFrame {
    const candidates = object.node.properties.map((_, i) => i).filter((i) => !object.seen[i]);
    return new KeyFrame(object, candidates, '', TextState.START);
  }

  protected feed(b: number, out: Frame[]): void {
    const props = this.object.node.properties;
    const pos = this.raw.length;
    if (this.object.node.additional === null) {
      // Only declared names: follow them byte by byte.
      if (b === QUOTE) {
        const done = this.candidates.find((i) => props[i].key.length === pos);
        if (done !== undefined) push(out, this.object.afterKey(done));
      }
      const kept = this.candidates.filter((i) => props[i].key[pos] === b);
      if (kept.length) push(out, new KeyFrame(this.object, kept, this.raw + String.fromCharCode(b), this.text));
      return;
    }
    if (b === QUOTE && this.text.atBoundary()) {
      const index = props.findIndex((p) => keyEquals(p, this.raw));
      if (index < 0) push(out, this.object.afterKey(-1));
      else if (!this.object.seen[index]) push(out, this.object.afterKey(index));
      return;
    }
    const text = this.text.next(b, false);
    if (text) push(out, new KeyFrame(this.object, this.candidates, this.raw + String.fromCharCode(b), text));
  }
}

function keyEquals(p: PropertyRule, raw: string): boolean {
  if (p.key.length !== raw.length) return false;
  for (let i = 0; i < raw.length; i++) if (p.key[i] !== raw.charCodeAt(i)) return false;
  return true;
}

// ---- arrays --------------------------------------------------------------------------------------------------

const enum ArrayPhase {
  Open,
  ValueRead,
}

type ArrayNode = Extract<GrammarNode, { kind: 'array' }>;

class ArrayFrame extends Frame {
  constructor(
    readonly node: ArrayNode,
    parent: Frame,
    readonly phase: ArrayPhase,
    readonly count: number,
  ) {
    super(parent);
  }

  private item(): ValueStart {
    return new ValueStart(this.node.items, new ArrayFrame(this.node, this.parent!, ArrayPhase.ValueRead, this.count + 1));
  }

  protected feed(b: number, out: Frame[]): void {
    if (b === 0x5d && this.count >= this.node.minItems) push(out, this.parent!);
    if (this.count >= this.node.maxItems) return;
    if (this.phase === ArrayPhase.Open) {
      for (const f of this.item().next(b)) push(out, f);
    } else if (b === COMMA) {
      push(out, this.item());
    }
  }
}

// ---- strings -------------------------------------------------------------------------------------------------

/**
 * The byte-level state of string content: between characters, inside a multi-byte UTF-8 character (bytes still
 * needed and the range the next one must be in), or inside an escape (after "\" or within \uXXXX).
 */
class TextState {
  static readonly START = new TextState(0, 0, 0, 0, 0);

  constructor(
    readonly need: number,
    readonly lo: number,
    readonly hi: number,
    /** 1 after "\", 2..5 while 4..1 hex digits of \u remain. */
    readonly escape: number,
    /** The code point being assembled (for patterns). */
    readonly cp: number,
  ) {}

  atBoundary(): boolean {
    return this.need === 0 && this.escape === 0;
  }

  /** The state after byte b, or null. `unicodeEscapes`: whether \u is allowed. Closing quotes are handled by the caller. */
  next(b: number, unicodeEscapes: boolean): TextState | null {
    if (this.escape === 1) {
      if (b === 0x75) return unicodeEscapes ? new TextState(0, 0, 0, 5, 0) : null;
      return b === QUOTE || b === BACKSLASH || b === 0x2f || b === 0x62 || b === 0x66 || b === 0x6e || b === 0x72 || b === 0x74 ? TextState.START : null;
    }
    if (this.escape > 1) {
      const hex = (b >= ZERO && b <= NINE) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
      if (!hex) return null;
      return this.escape === 2 ? TextState.START : new TextState(0, 0, 0, this.escape - 1, 0);
    }
    if (this.need > 0) {
      if (b < this.lo || b > this.hi) return null;
      const cp = (this.cp << 6) | (b & 0x3f);
      return this.need === 1 ? new TextState(0, 0, 0, 0, cp) : new TextState(this.need - 1, 0x80, 0xbf, 0, cp);
    }
    if (b === BACKSLASH) return new TextState(0, 0, 0, 1, 0);
    if (b < 0x20 || b === QUOTE) return null;
    if (b < 0x80) return ASCII[b];
    // Lead bytes, with the ranges that rule out overlong forms, surrogates and code points above U+10FFFF.
    if (b >= 0xc2 && b <= 0xdf) return new TextState(1, 0x80, 0xbf, 0, b & 0x1f);
    if (b === 0xe0) return new TextState(2, 0xa0, 0xbf, 0, b & 0x0f);
    if (b === 0xed) return new TextState(2, 0x80, 0x9f, 0, b & 0x0f);
    if (b >= 0xe1 && b <= 0xef) return new TextState(2, 0x80, 0xbf, 0, b & 0x0f);
    if (b === 0xf0) return new TextState(3, 0x90, 0xbf, 0, b & 0x07);
    if (b >= 0xf1 && b <= 0xf3) return new TextState(3, 0x80, 0xbf, 0, b & 0x07);
    if (b === 0xf4) return new TextState(3, 0x80, 0x8f, 0, b & 0x07);
    return null;
  }
}

const UNBOUNDED = new WeakMap<StringNode, StringNode>();

/** The state after each ASCII character (shared: plain text allocates no state). */
const ASCII = Array.from({ length: 0x80 }, (_, b) => new TextState(0, 0, 0, 0, b));

type StringNode = Extract<GrammarNode, { kind: 'string' }>;

export class StringFrame extends Frame {
  constructor(
    readonly node: StringNode,
    parent: Frame,
    /** Characters so far (an escape counts as one). */
    readonly length: number,
    private readonly pattern: readonly number[] | null,
    private readonly text: TextState,
  ) {
    super(parent);
  }

  /** Characters still allowed when the next bytes are plain text (no escape, no pending UTF-8 bytes, no pattern); else -1. */
  plainRoom(): number {
    if (this.pattern !== null || !this.text.atBoundary()) return -1;
    return this.node.maxLength - this.length;
  }

  /**
   * What decides which tokens that are not plain text may follow (with plainRoom() >= 0), besides the room left (a
   * token's characters before its closing quote must fit): the string's schema, how many characters are still
   * missing to minLength, and what comes after the string (the parent).
   */
  continuationKey(): string {
    return String(Math.max(0, this.node.minLength - this.length));
  }

  /** The same place in a string without maxLength (what follows does not depend on the room left). */
  unbounded(): StringFrame {
    if (this.node.maxLength === Infinity) return this;
    let node = UNBOUNDED.get(this.node);
    if (!node) UNBOUNDED.set(this.node, (node = { ...this.node, maxLength: Infinity }));
    return new StringFrame(node, this.parent!, this.length, this.pattern, this.text);
  }

  protected feed(b: number, out: Frame[]): void {
    const node = this.node;
    const machine = node.pattern;
    if (this.text.atBoundary()) {
      if (b === QUOTE) {
        if (this.length >= node.minLength && (machine === null || machine.accepts(this.pattern!))) push(out, this.parent!);
        return;
      }
      if (this.length >= node.maxLength) return;
      if (machine !== null && (b === BACKSLASH || b < 0x20)) return; // no escapes under a pattern
    }
    const text = this.text.next(b, true);
    if (!text) return;
    const starts = this.text.atBoundary() ? 1 : 0;
    let pattern = this.pattern;
    if (machine !== null && text.atBoundary()) {
      pattern = machine.step(pattern!, text.cp);
      if (pattern === null) return;
    } else if (machine !== null) {
      // Inside a multi-byte character: some character it can still become must fit the pattern.
      const rest = 6 * (text.need - 1);
      const base = text.cp << (6 * text.need);
      const lo = base | ((text.lo & 0x3f) << rest);
      const hi = base | ((text.hi & 0x3f) << rest) | ((1 << rest) - 1);
      if (!machine.canStepInRange(pattern!, lo, hi)) return;
    }
    push(out, new StringFrame(node, this.parent!, this.length + starts, pattern, text));
  }
}

// ---- numbers -------------------------------------------------------------------------------------------------

const enum NumberPhase {
  Start,
  Sign,
  /** Integer part is "0". */
  Zero,
  Int,
  Dot,
  Frac,
  E,
  ESign,
  Exp,
}

class NumberFrame extends Frame {
  constructor(
    private readonly integer: boolean,
    private readonly bounds: NumberBounds | null,
    parent: Frame,
    private readonly phase: NumberPhase,
    private readonly negative: boolean,
    private readonly intDigits: string,
    private readonly fracDigits: string,
    private readonly expDigits: number,
  ) {
    super(parent);
  }

  feedInto(b: number, out: Frame[]): void {
    this.feed(b, out);
  }

  override canEnd(): boolean {
    const p = this.phase;
    if (p !== NumberPhase.Zero && p !== NumberPhase.Int && p !== NumberPhase.Frac && p !== NumberPhase.Exp) return false;
    if (p === NumberPhase.Zero && this.negative) return false;
    if (!this.bounds) return true;
    return inBounds(this.value(), this.bounds);
  }

  private value(): number {
    const magnitude = Number(this.intDigits + (this.fracDigits ? '.' + this.fracDigits : ''));
    return this.negative ? -magnitude : magnitude;
  }

  private with(phase: NumberPhase, intDigits: string, fracDigits: string, expDigits: number, negative = this.negative): NumberFrame {
    return new NumberFrame(this.integer, this.bounds, this.parent!, phase, negative, intDigits, fracDigits, expDigits);
  }

  protected feed(b: number, out: Frame[]): void {
    const digit = b >= ZERO && b <= NINE;
    const d = String.fromCharCode(b);
    let next: NumberFrame | null = null;
    switch (this.phase) {
      case NumberPhase.Start:
        if (b === MINUS) next = this.with(NumberPhase.Sign, '', '', 0, true);
        else if (digit) next = this.with(b === ZERO ? NumberPhase.Zero : NumberPhase.Int, d, '', 0);
        break;
      case NumberPhase.Sign:
        // "-0" is not written: an integer has no negative zero, a number goes on with "-0.".
        if (digit && !(b === ZERO && this.integer)) next = this.with(b === ZERO ? NumberPhase.Zero : NumberPhase.Int, d, '', 0);
        break;
      case NumberPhase.Zero:
      case NumberPhase.Int:
        if (digit && this.phase === NumberPhase.Int && this.intDigits.length < MAX_DIGITS) next = this.with(NumberPhase.Int, this.intDigits + d, '', 0);
        else if (b === DOT && !this.integer) next = this.with(NumberPhase.Dot, this.intDigits, '', 0);
        else if ((b === 0x65 || b === 0x45) && !this.integer && !this.bounds) next = this.with(NumberPhase.E, this.intDigits, '', 0);
        break;
      case NumberPhase.Dot:
      case NumberPhase.Frac:
        if (digit && this.fracDigits.length < MAX_DIGITS) next = this.with(NumberPhase.Frac, this.intDigits, this.fracDigits + d, 0);
        else if ((b === 0x65 || b === 0x45) && this.phase === NumberPhase.Frac && !this.bounds)
          next = this.with(NumberPhase.E, this.intDigits, this.fracDigits, 0);
        break;
      case NumberPhase.E:
        if (b === MINUS || b === 0x2b) next = this.with(NumberPhase.ESign, this.intDigits, this.fracDigits, 0);
        else if (digit) next = this.with(NumberPhase.Exp, this.intDigits, this.fracDigits, 1);
        break;
      case NumberPhase.ESign:
      case NumberPhase.Exp:
        if (digit && this.expDigits < MAX_EXPONENT_DIGITS) next = this.with(NumberPhase.Exp, this.intDigits, this.fracDigits, this.expDigits + 1);
        break;
    }
    if (next && next.reachable()) push(out, next);
    // Any other byte ends the number; the parent reads it.
    if (!digit && this.canEnd()) for (const f of this.parent!.next(b)) push(out, f);
  }

  /** Whether some number with this prefix lies within the bounds. */
  private reachable(): boolean {
    const bounds = this.bounds;
    if (!bounds) return true;
    // Bounds on the magnitude, mirrored for a negative sign.
    const m: NumberBounds = this.negative
      ? { min: -bounds.max, minExclusive: bounds.maxExclusive, max: -bounds.min, maxExclusive: bounds.minExclusive }
      : bounds;
    // After "-" the magnitude must be above 0 (no negative zero).
    if (this.phase === NumberPhase.Sign) return this.integer ? intervalHasInteger(1, Infinity, m) : intervalMeets(Number.MIN_VALUE, Infinity, m);
    const int = Number(this.intDigits);
    if (this.phase === NumberPhase.Dot || this.phase === NumberPhase.Frac) {
      const scale = 10 ** -this.fracDigits.length;
      const v = Number(this.intDigits + '.' + (this.fracDigits || '0'));
      // The value itself, or anything in [v, v + scale) that more digits give.
      return inBounds(v, m) || (this.fracDigits.length < MAX_DIGITS && intervalMeets(v, v + scale, m));
    }
    if (this.phase === NumberPhase.Zero) return this.integer ? inBounds(0, m) : intervalMeets(0, 1, m) || inBounds(0, m);
    // Int: the integer itself, more digits (int·10^k … (int+1)·10^k), or a fraction.
    for (let k = 0; k + this.intDigits.length <= MAX_DIGITS; k++) {
      const lo = int * 10 ** k;
      const hi = (int + 1) * 10 ** k;
      if (this.integer ? intervalHasInteger(lo, hi, m) : inBounds(lo, m) || intervalMeets(lo, hi, m)) return true;
    }
    return false;
  }
}

function inBounds(v: number, b: NumberBounds): boolean {
  return (b.minExclusive ? v > b.min : v >= b.min) && (b.maxExclusive ? v < b.max : v <= b.max);
}

/** Some real x with lo <= x < hi lies within the bounds. */
function intervalMeets(lo: number, hi: number, b: NumberBounds): boolean {
  const from = Math.max(lo, b.min);
  const to = Math.min(hi, b.max);
  if (from < to) return true;
  return from === to && to < hi && inBounds(from, b) && from >= lo;
}

/** Some integer x with lo <= x < hi lies within the (integer, inclusive) bounds. */
function intervalHasInteger(lo: number, hi: number, b: NumberBounds): boolean {
  const from = Math.max(lo, Math.ceil(b.minExclusive ? b.min + 1e-9 : b.min));
  const to = Math.min(hi - 1, Math.floor(b.maxExclusive ? b.max - 1e-9 : b.max));
  return from <= to;
}

// ---- literals (enum, const, true, false, null) ---------------------------------------------------------------

class LiteralFrame extends Frame {
  constructor(
    private readonly texts: readonly Uint8Array[],
    private readonly pos: number,
    parent: Frame,
  ) {
    super(parent);
  }

  feedInto(b: number, out: Frame[]): void {
    this.feed(b, out);
  }

  override canEnd(): boolean {
    return this.texts.some((t) => t.length === this.pos);
  }

  protected feed(b: number, out: Frame[]): void {
    const kept = this.texts.filter((t) => t.length > this.pos && t[this.pos] === b);
    if (kept.length) {
      const pos = this.pos + 1;
      // A finished text hands over to the parent; a longer one (enum [1, 10]) may go on.
      if (kept.every((t) => t.length === pos)) push(out, this.parent!);
      else push(out, new LiteralFrame(kept, pos, this.parent!));
    }
    // A number literal ends at the first byte that is not part of it.
    if (this.pos > 0 && this.canEnd() && !(b >= ZERO && b <= NINE) && b !== DOT && b !== 0x65 && b !== 0x45) {
      for (const f of this.parent!.next(b)) push(out, f);
    }
  }
}

// ---- the state -----------------------------------------------------------------------------------------------

/** A parse state: the alternatives still open. Empty = dead. */
export type ParseState = readonly Frame[];

export function initialState(root: GrammarNode): ParseState {
  return [new DocumentStart(new ValueStart(root, new DocumentEnd()))];
}

export function advanceByte(state: ParseState, b: number): ParseState {
  if (state.length === 1) return state[0].next(b);
  const out: Frame[] = [];
  for (const f of state) for (const g of f.next(b)) push(out, g);
  return out;
}

export function advanceBytes(state: ParseState, bytes: Uint8Array): ParseState {
  for (let i = 0; i < bytes.length && state.length > 0; i++) state = advanceByte(state, bytes[i]);
  return state;
}

/** The document may end here. */
export function isComplete(state: ParseState): boolean {
  return state.some((f) => f.complete());
}
