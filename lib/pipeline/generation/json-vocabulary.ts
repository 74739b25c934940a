// The tokenizer's vocabulary as bytes, for grammar masks: every token id decoded once to the UTF-8 bytes it adds to
// the text (byte-level BPE pieces through the GPT-2 byte alphabet; SentencePiece pieces with "▁" as a space and
// <0xNN> byte-fallback pieces as single bytes), and tries over those bytes that a parse state is walked against.
import type { Tokenizer } from '@huggingface/tokenizers';
import { bytesToUnicode } from '../../model/tiny-tokenizer';

/** A byte trie in flat arrays: children as first-child / next-sibling lists; token ids ending at a node as a list. */
export class ByteTrie {
  readonly firstChild: Int32Array;
  readonly nextSibling: Int32Array;
  readonly byte: Uint8Array;
  /** First token id whose bytes end at the node, or -1. */
  readonly tokenHead: Int32Array;
  /** Next token id with the same bytes, or -1 (indexed by token id). */
  readonly tokenNext: Int32Array;
  readonly nodeCount: number;

  constructor(tokens: ReadonlyArray<Uint8Array | null>, include: (id: number) => boolean) {
    const ids: number[] = [];
    for (let id = 0; id < tokens.length; id++) if (tokens[id] && tokens[id]!.length > 0 && include(id)) ids.push(id);
    // Latin-1 strings compare as their bytes do.
    const keys = new Map(ids.map((id) => [id, Buffer.from(tokens[id]!).toString('latin1')]));
    ids.sort((a, b) => (keys.get(a)! < keys.get(b)! ? -1 : keys.get(a)! > keys.get(b)! ? 1 : a - b));
    const firstChild = [-1];
    const lastChild = [-1];
    const nextSibling = [-1];
    const byte = [0];
    const tokenHead = [-1];
    const tokenTail = [-1];
    const tokenNext = new Int32Array(tokens.length).fill(-1);
    // Sorted order: each token shares a prefix with the previous one, and its new nodes are last children.
    const path = [0];
    let previous: Uint8Array = new Uint8Array(0);
    for (const id of ids) {
      const bytes = tokens[id]!;
      let common = 0;
      while (common < bytes.length && common < previous.length && bytes[common] === previous[common]) common++;
      path.length = common + 1;
      for (let i = common; i < bytes.length; i++) {
        const parent = path[i];
        const node = firstChild.length;
        firstChild.push(-1);
        lastChild.push(-1);
        nextSibling.push(-1);
        byte.push(bytes[i]);
        tokenHead.push(-1);
        tokenTail.push(-1);
        if (lastChild[parent] < 0) firstChild[parent] = node;
        else nextSibling[lastChild[parent]] = node;
        lastChild[parent] = node;
        path.push(node);
      }
      const end = path[bytes.length];
      if (tokenHead[end] < 0) tokenHead[end] = id;
      else tokenNext[tokenTail[end]] = id;
      tokenTail[end] = id;
      previous = bytes;
    }
    this.firstChild = Int32Array.from(firstChild);
    this.nextSibling = Int32Array.from(nextSibling);
    this.byte = Uint8Array.from(byte);
    this.tokenHead = Int32Array.from(tokenHead);
    this.tokenNext = tokenNext;
    this.nodeCount = firstChild.length;
  }
}

/**
 * Code points a token adds inside a JSON string when every byte is plain string text (no quote, backslash or
 * control byte) and the bytes are whole UTF-8 characters; -1 otherwise.
 */
function plainTextLength(bytes: Uint8Array): number {
  let chars = 0;
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i];
    let need: number;
    if (b < 0x80) {
      if (b < 0x20 || b === 0x22 || b === 0x5c) return -1;
      need = 0;
    } else if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) need = 2;
    else if (b >= 0xf0 && b <= 0xf4) need = 3;
    else return -1;
    if (i + need >= bytes.length) return -1; // a character cut at the token's end
    // Validate the whole character with the platform decoder's rules (overlongs, surrogates).
    if (need > 0 && !validUtf8(bytes.subarray(i, i + need + 1))) return -1;
    i += need + 1;
    chars++;
  }
  return chars;
}

/**
 * Characters a token adds to a JSON string it starts inside of (between characters), up to its first unescaped
 * quote: a UTF-8 lead byte or an escape counts one, as the grammar counts them.
 */
function charsBeforeQuote(bytes: Uint8Array): number {
  let chars = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === 0x22) break;
    if (b === 0x5c) {
      chars++;
      i += bytes[i + 1] === 0x75 ? 5 : 1;
    } else if (b < 0x80 || b >= 0xc0) chars++;
  }
  return chars;
}

const strictDecoder = new TextDecoder('utf-8', { fatal: true });

function validUtf8(bytes: Uint8Array): boolean {
  try {
    strictDecoder.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

export class TokenVocabulary {
  /** All tokens that can appear in generated text (special tokens left out). */
  readonly trie: ByteTrie;
  /** The tokens that are not plain string text (quotes, escapes, control bytes, partial UTF-8). */
  readonly irregularTrie: ByteTrie;
  /** plainTextLength of each token id (-1 for special tokens and ids beyond the tokenizer). */
  readonly plainLength: Int32Array;
  /** 1 for every token that is plain string text. */
  readonly plainMask: Uint8Array;
  /** charsBeforeQuote of each token: what it spends of a string's maxLength. */
  readonly stringChars: Int32Array;

  /** tokens[id]: the bytes token id adds to the text, or null (a special token); size: the decoder's logits width. */
  constructor(
    readonly tokens: ReadonlyArray<Uint8Array | null>,
    readonly size: number,
  ) {
    if (tokens.length > size) throw new Error(`the tokenizer has ${tokens.length} ids but the decoder only ${size} logits`);
    this.plainLength = new Int32Array(size).fill(-1);
    this.plainMask = new Uint8Array(size);
    this.stringChars = new Int32Array(size);
    tokens.forEach((bytes, id) => {
      if (!bytes || bytes.length === 0) return;
      this.stringChars[id] = charsBeforeQuote(bytes);
      this.plainLength[id] = plainTextLength(bytes);
      if (this.plainLength[id] >= 0) this.plainMask[id] = 1;
    });
    this.trie = new ByteTrie(tokens, () => true);
    this.irregularTrie = new ByteTrie(tokens, (id) => this.plainLength[id] < 0);
  }

  /** The text of token ids, exactly as the grammar saw it. */
  decode(ids: readonly number[]): string {
    const parts = ids.map((id) => this.tokens[id] ?? new Uint8Array(0));
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    return new TextDecoder().decode(all);
  }
}

interface DecoderConfig {
  type: string;
  decoders?: DecoderConfig[];
  pattern?: { String?: string };
  content?: string;
  replacement?: string;
}

function decoderChain(config: DecoderConfig | null | undefined): DecoderConfig[] {
  if (!config) return [];
  return config.type === 'Sequence' ? (config.decoders ?? []).flatMap(decoderChain) : [config];
}

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

/**
 * The bytes of every token of a tokenizer: byte-level BPE (a ByteLevel decoder) or SentencePiece-style BPE
 * (Replace/Metaspace "▁" → space, ByteFallback). Special added tokens get null.
 */
export function tokenBytes(tokenizer: Tokenizer): Array<Uint8Array | null> {
  const chain = decoderChain(tokenizer.decoder?.config);
  const types = chain.map((d) => d.type);
  const supported = ['ByteLevel', 'Replace', 'ByteFallback', 'Fuse', 'Strip', 'Metaspace'];
  const unsupported = types.filter((t) => !supported.includes(t));
  if (unsupported.length) throw new Error(`JSON output needs a byte-level BPE or SentencePiece tokenizer; this one's decoder has ${unsupported.join(', ')}`);
  const byteLevel = types.includes('ByteLevel');
  const byteFallback = types.includes('ByteFallback');
  const replacements: Array<[string, string]> = [];
  for (const d of chain) {
    if (d.type === 'Replace' && typeof d.pattern?.String === 'string') replacements.push([d.pattern.String, d.content ?? '']);
    if (d.type === 'Metaspace') replacements.push([d.replacement ?? '▁', ' ']);
  }
  const fromByteChar = new Map(bytesToUnicode().map((c, b) => [c, b]));
  const encoder = new TextEncoder();
  const special = new Map<number, boolean>();
  for (const t of tokenizer.get_added_tokens_decoder().values()) special.set(t.id, t.special);
  const vocab = tokenizer.get_vocab(true);
  let size = 0;
  for (const id of vocab.values()) size = Math.max(size, id + 1);
  const out = new Array<Uint8Array | null>(size).fill(null);
  for (const [piece, id] of vocab) {
    if (special.get(id) === true) continue;
    if (special.has(id)) {
      out[id] = encoder.encode(piece); // a non-special added token is its text
    } else if (byteLevel) {
      const bytes = new Uint8Array(piece.length);
      let n = 0;
      for (const ch of piece) {
        const b = fromByteChar.get(ch);
        if (b === undefined) throw new Error(`token ${id} (${JSON.stringify(piece)}) is not in the byte-level alphabet`);
        bytes[n++] = b;
      }
      out[id] = bytes.slice(0, n);
    } else {
      const m = byteFallback ? BYTE_PIECE.exec(piece) : null;
      if (m) {
        out[id] = Uint8Array.of(parseInt(m[1], 16));
      } else {
        let text = piece;
        for (const [from, to] of replacements) text = text.split(from).join(to);
        out[id] = encoder.encode(text);
      }
    }
  }
  return out;
}
