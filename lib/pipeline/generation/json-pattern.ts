// The `pattern` subset for constrained strings, as a Thompson NFA stepped one code point at a time.
// Supported: literals, `.`, classes `[a-z0-9_]` and `[^…]`, escapes \d \w \s \D \W \S \n \t \r \f \v \uXXXX \xHH and
// escaped punctuation, groups `( )` and `(?: )`, alternation `|`, quantifiers * + ? {n} {n,} {n,m} (lazy forms
// match the same strings), `^` at the start and `$` at the end. As in JSON Schema, a pattern without them matches
// anywhere in the string. Backreferences, lookaround, \b and named groups are errors. A string with a pattern is
// generated without JSON escapes, so the pattern cannot ask for `"`, `\` or control characters.

type CharSet = { ranges: Array<[number, number]>; negated: boolean };
type Ast = { t: 'set'; set: CharSet } | { t: 'seq'; items: Ast[] } | { t: 'alt'; options: Ast[] } | { t: 'repeat'; item: Ast; min: number; max: number };

const MAX_REPEAT = 100;
const WHITESPACE: Array<[number, number]> = [
  [9, 13],
  [32, 32],
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200a],
  [0x2028, 0x2029],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
  [0xfeff, 0xfeff],
];
const DIGIT: Array<[number, number]> = [[48, 57]];
const WORD: Array<[number, number]> = [
  [48, 57],
  [65, 90],
  [95, 95],
  [97, 122],
];
const LINE_TERMINATORS: Array<[number, number]> = [
  [10, 10],
  [13, 13],
  [0x2028, 0x2029],
];
const ANY_CHAR: CharSet = { ranges: [], negated: true };

class PatternParser {
  private i = 0;

  constructor(private readonly src: string) {}

  parse(): Ast {
    const anchoredStart = this.src.startsWith('^');
    if (anchoredStart) this.i = 1;
    const body = this.alternation();
    let anchoredEnd = false;
    if (this.peek() === '$') {
      this.i++;
      anchoredEnd = true;
    }
    if (this.i < this.src.length) this.fail(`unexpected "${this.src[this.i]}"`);
    const anything: Ast = { t: 'repeat', item: { t: 'set', set: ANY_CHAR }, min: 0, max: Infinity };
    return { t: 'seq', items: [...(anchoredStart ? [] : [anything]), body, ...(anchoredEnd ? [] : [anything])] };
  }

  private fail(what: string): never {
    throw new Error(`pattern ${JSON.stringify(this.src)} at ${this.i}: ${what} (see the supported pattern subset in the README)`);
  }

  private peek(): string | undefined {
    return this.src[this.i];
  }

  private alternation(): Ast {
    const options = [this.sequence()];
    while (this.peek() === '|') {
      this.i++;
      options.push(this.sequence());
    }
    return options.length === 1 ? options[0] : { t: 'alt', options };
  }

  private sequence(): Ast {
    const items: Ast[] = [];
    for (let c = this.peek(); c !== undefined && c !== '|' && c !== ')'; c = this.peek()) {
      if (c === '$' && this.i === this.src.length - 1) break;
      items.push(this.quantified(this.atom()));
    }
    return { t: 'seq', items };
  }

  private quantified(item: Ast): Ast {
    for (;;) {
      const c = this.peek();
      let min: number;
      let max: number;
      if (c === '*') [min, max] = [0, Infinity];
      else if (c === '+') [min, max] = [1, Infinity];
      else if (c === '?') [min, max] = [0, 1];
      else if (c === '{' && /^\{\d+(,\d*)?\}/.test(this.src.slice(this.i))) {
        const m = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.i))!;
        min = Number(m[1]);
        max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
        if (max < min) this.fail(`{${min},${max}} has max below min`);
        if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) this.fail(`repeat counts above ${MAX_REPEAT} are not supported`);
        this.i += m[0].length - 1;
      } else return item;
      this.i++;
      if (this.peek() === '?') this.i++; // lazy: same strings
      item = { t: 'repeat', item, min, max };
    }
  }

  private atom(): Ast {
    const c = this.src[this.i++];
    switch (c) {
      case '(': {
        if (this.src.startsWith('?:', this.i)) this.i += 2;
        else if (this.peek() === '?') this.fail('lookaround and named groups are not supported');
        const inner = this.alternation();
        if (this.peek() !== ')') this.fail('missing ")"');
        this.i++;
        return inner;
      }
      case '[':
        return { t: 'set', set: this.charClass() };
      case '.':
        return { t: 'set', set: { ranges: LINE_TERMINATORS, negated: true } };
      case '\\':
        return { t: 'set', set: this.escape(false) };
      case '^':
      case '$':
        return this.fail(`"${c}" is only supported at the start / end`);
      case '*':
      case '+':
      case '?':
        return this.fail(`nothing to repeat before "${c}"`);
      case ')':
        return this.fail('unbalanced ")"');
      default: {
        const cp = this.src.codePointAt(this.i - 1)!;
        if (cp > 0xffff) this.i++;
        return { t: 'set', set: { ranges: [[cp, cp]], negated: false } };
      }
    }
  }

  private charClass(): CharSet {
    const negated = this.peek() === '^';
    if (negated) this.i++;
    const ranges: Array<[number, number]> = [];
    let first = true;
    while (this.peek() !== ']' || first) {
      first = false;
      if (this.i >= this.src.length) this.fail('missing "]"');
      const lo = this.classAtom();
      if (this.peek() === '-' && this.src[this.i + 1] !== ']' && this.i + 1 < this.src.length) {
        this.i++;
        const hi = this.classAtom();
        if (lo.ranges.length !== 1 || hi.ranges.length !== 1 || lo.negated || hi.negated || lo.ranges[0][0] !== lo.ranges[0][1])
          this.fail('a range needs single characters at both ends');
        if (hi.ranges[0][0] < lo.ranges[0][0]) this.fail('range out of order');
        ranges.push([lo.ranges[0][0], hi.ranges[0][0]]);
      } else if (lo.negated) {
        ranges.push(...complement(lo.ranges));
      } else {
        ranges.push(...lo.ranges);
      }
    }
    this.i++;
    return { ranges, negated };
  }

  private classAtom(): CharSet {
    const c = this.src[this.i++];
    if (c === '\\') return this.escape(true);
    const cp = this.src.codePointAt(this.i - 1)!;
    if (cp > 0xffff) this.i++;
    return { ranges: [[cp, cp]], negated: false };
  }

  private escape(inClass: boolean): CharSet {
    const c = this.src[this.i++];
    if (c === undefined) this.fail('pattern ends with "\\"');
    const single = (cp: number): CharSet => ({ ranges: [[cp, cp]], negated: false });
    switch (c) {
      case 'd':
        return { ranges: DIGIT, negated: false };
      case 'D':
        return { ranges: DIGIT, negated: true };
      case 'w':
        return { ranges: WORD, negated: false };
      case 'W':
        return { ranges: WORD, negated: true };
      case 's':
        return { ranges: WHITESPACE, negated: false };
      case 'S':
        return { ranges: WHITESPACE, negated: true };
      case 'n':
        return single(10);
      case 't':
        return single(9);
      case 'r':
        return single(13);
      case 'f':
        return single(12);
      case 'v':
        return single(11);
      case 'u':
      case 'x': {
        const n = c === 'u' ? 4 : 2;
        const hex = this.src.slice(this.i, this.i + n);
        if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(hex)) this.fail(`\\${c} needs ${n} hex digits`);
        this.i += n;
        return single(parseInt(hex, 16));
      }
      case 'b':
        if (inClass) return single(8);
        return this.fail('\\b (word boundary) is not supported');
      default:
        if (/[0-9]/.test(c)) this.fail('backreferences are not supported');
        if (/[A-Za-z]/.test(c)) this.fail(`the escape \\${c} is not supported`);
        return single(c.codePointAt(0)!);
    }
  }
}

function complement(ranges: Array<[number, number]>): Array<[number, number]> {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  let next = 0;
  for (const [lo, hi] of sorted) {
    if (lo > next) out.push([next, lo - 1]);
    next = Math.max(next, hi + 1);
  }
  if (next <= 0x10ffff) out.push([next, 0x10ffff]);
  return out;
}

/** Whether some code point in [lo, hi] is in the set. */
function meetsRange(set: CharSet, lo: number, hi: number): boolean {
  if (!set.negated) return set.ranges.some(([a, b]) => a <= hi && b >= lo);
  // Negated: some point of [lo, hi] escapes every range.
  let next = lo;
  for (const [a, b] of [...set.ranges].sort((x, y) => x[0] - y[0])) {
    if (a > next) break;
    if (b >= next) next = b + 1;
    if (next > hi) return false;
  }
  return next <= hi;
}

function inSet(set: CharSet, cp: number): boolean {
  let found = false;
  for (const [lo, hi] of set.ranges) {
    if (cp >= lo && cp <= hi) {
      found = true;
      break;
    }
  }
  return found !== set.negated;
}

/** NFA states: a character test with one successor, or an epsilon split to up to two successors. */
interface NfaState {
  set: CharSet | null;
  out: number[];
}

/** A pattern's NFA. A state of the machine is the sorted list of NFA states it is in (after epsilon closure). */
export class PatternMachine {
  readonly start: readonly number[];
  private readonly mark: Uint32Array;
  private generation = 0;

  constructor(
    private readonly states: NfaState[],
    startState: number,
    private readonly accept: number,
  ) {
    this.mark = new Uint32Array(states.length);
    this.start = this.closure([startState]);
  }

  /** The state after one more code point, or null when no string matching the pattern continues this way. */
  step(current: readonly number[], cp: number): readonly number[] | null {
    const next: number[] = [];
    for (const s of current) {
      const st = this.states[s];
      if (st.set && inSet(st.set, cp)) next.push(st.out[0]);
    }
    if (next.length === 0) return null;
    return this.closure(next);
  }

  /** Whether some code point in [lo, hi] can come next (a multi-byte character whose first bytes are read). */
  canStepInRange(current: readonly number[], lo: number, hi: number): boolean {
    return current.some((s) => this.states[s].set !== null && meetsRange(this.states[s].set, lo, hi));
  }

  accepts(current: readonly number[]): boolean {
    return current.includes(this.accept);
  }

  private closure(seeds: number[]): number[] {
    const gen = ++this.generation;
    const out: number[] = [];
    const stack = [...seeds];
    while (stack.length) {
      const s = stack.pop()!;
      if (this.mark[s] === gen) continue;
      this.mark[s] = gen;
      const st = this.states[s];
      if (st.set || s === this.accept) out.push(s);
      if (!st.set) stack.push(...st.out);
    }
    return out.sort((a, b) => a - b);
  }
}

/** Compiles a pattern of the supported subset; throws an Error saying what is not supported. */
export function compilePattern(source: string): PatternMachine {
  const ast = new PatternParser(source).parse();
  const states: NfaState[] = [];
  const add = (set: CharSet | null, out: number[] = []): number => states.push({ set, out }) - 1;
  // Builds the fragment for ast that continues to `next`; returns its entry state.
  const build = (node: Ast, next: number): number => {
    switch (node.t) {
      case 'set':
        return add(node.set, [next]);
      case 'seq':
        return node.items.reduceRight((acc, item) => build(item, acc), next);
      case 'alt':
        return add(
          null,
          node.options.map((o) => build(o, next)),
        );
      case 'repeat': {
        let entry = next;
        if (node.max === Infinity) {
          const loop = add(null, []);
          states[loop].out = [build(node.item, loop), next];
          entry = loop;
        } else {
          for (let k = node.max; k > node.min; k--) entry = add(null, [build(node.item, entry), next]);
        }
        for (let k = 0; k < node.min; k++) entry = build(node.item, entry);
        return entry;
      }
    }
  };
  const accept = add(null);
  const start = build(ast, accept);
  return new PatternMachine(states, start, accept);
}
