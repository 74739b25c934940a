// JSON-schema constrained decoding as a logits processor: before any other processor, every token that cannot
// continue the text into a document matching the schema gets -Infinity, and EOS only once the document is complete.
// The parse state of each generated prefix is kept in a tree keyed by token ids, so every beam (or the single
// greedy / sampled sequence) advances its own state by the one token it added.
import { performance } from 'node:perf_hooks';
import { advanceByte, advanceBytes, Frame, GrammarNode, initialState, isComplete, ParseState, StringFrame } from './json-grammar';
import type { CompiledSchema } from './json-schema';
import type { ByteTrie, TokenVocabulary } from './json-vocabulary';
import type { LogitsProcessor, TokenHistory } from './types';

interface PrefixNode {
  state: ParseState;
  children: Map<number, PrefixNode>;
}

export class JsonSchemaConstraint implements LogitsProcessor {
  private readonly root: PrefixNode;
  private readonly allowed: Uint8Array;
  private readonly eos: readonly number[];
  /**
   * Inside plain string text the tokens that are not plain text (a closing quote and what follows, escapes, cut
   * UTF-8) depend only on StringFrame.continuationKey(): kept per string value, so a long string walks them once.
   */
  private readonly continuations = new WeakMap<Frame, Map<GrammarNode, Map<string, Int32Array>>>();
  /** Time spent computing and applying masks, and how many. */
  maskMs = 0;
  masks = 0;

  constructor(
    readonly schema: CompiledSchema,
    private readonly vocab: TokenVocabulary,
    eosTokenIds: readonly number[],
  ) {
    if (eosTokenIds.length === 0) throw new Error('JSON output needs an end-of-sequence token to end the document');
    this.root = { state: initialState(schema.root), children: new Map() };
    this.allowed = new Uint8Array(vocab.size);
    this.eos = [...eosTokenIds];
  }

  apply(scores: Float32Array, history: TokenHistory): void {
    const t0 = performance.now();
    const state = this.stateAfter(history.generatedIds);
    const allowed = this.allowedTokens(state);
    for (let i = 0; i < scores.length; i++) if (allowed[i] === 0) scores[i] = -Infinity;
    this.maskMs += performance.now() - t0;
    this.masks++;
  }

  /** The parse state after the generated ids (empty: they left the grammar). */
  stateAfter(ids: readonly number[]): ParseState {
    let node = this.root;
    for (const id of ids) {
      let child = node.children.get(id);
      if (!child) {
        const bytes = this.vocab.tokens[id];
        child = { state: bytes && !this.eos.includes(id) ? advanceBytes(node.state, bytes) : [], children: new Map() };
        node.children.set(id, child);
      }
      node = child;
    }
    return node.state;
  }

  /** Whether the generated ids form a complete document. */
  complete(ids: readonly number[]): boolean {
    return isComplete(this.stateAfter(ids));
  }

  /** allowed[id] = 1 for every token that may come next (shared buffer, valid until the next call). */
  allowedTokens(state: ParseState): Uint8Array {
    const allowed = this.allowed;
    allowed.fill(0);
    if (state.length === 0) return allowed;
    const top = state.length === 1 && state[0] instanceof StringFrame ? state[0] : null;
    const room = top ? top.plainRoom() : -1;
    if (top && room >= 0) {
      // Inside plain string text: the plain tokens that fit come from the table; only the others are walked.
      if (room === Infinity) allowed.set(this.vocab.plainMask);
      else {
        const lengths = this.vocab.plainLength;
        for (let i = 0; i < lengths.length; i++) if (lengths[i] >= 0 && lengths[i] <= room) allowed[i] = 1;
      }
      const chars = this.vocab.stringChars;
      for (const id of this.irregularContinuations(top)) if (chars[id] <= room) allowed[id] = 1;
    } else {
      const ids: number[] = [];
      walk(this.vocab.trie, 0, state, ids);
      for (const id of ids) allowed[id] = 1;
    }
    const complete = isComplete(state);
    for (const id of this.eos) allowed[id] = complete ? 1 : 0;
    return allowed;
  }

  /** The tokens that are not plain text and may follow, ignoring maxLength (the caller checks each one's characters). */
  private irregularContinuations(top: StringFrame): Int32Array {
    let byNode = this.continuations.get(top.parent!);
    if (!byNode) this.continuations.set(top.parent!, (byNode = new Map<GrammarNode, Map<string, Int32Array>>()));
    let byKey = byNode.get(top.node);
    if (!byKey) byNode.set(top.node, (byKey = new Map<string, Int32Array>()));
    const key = top.continuationKey();
    let ids = byKey.get(key);
    if (!ids) {
      const list: number[] = [];
      walk(this.vocab.irregularTrie, 0, [top.unbounded()], list);
      ids = Int32Array.from(list);
      byKey.set(key, ids);
    }
    return ids;
  }
}

/** Collects in `ids` every token of the trie (below `node`) whose bytes the state accepts. */
function walk(trie: ByteTrie, node: number, state: ParseState, ids: number[]): void {
  for (let c = trie.firstChild[node]; c >= 0; c = trie.nextSibling[c]) {
    const next = advanceByte(state, trie.byte[c]);
    if (next.length === 0) continue;
    for (let t = trie.tokenHead[c]; t >= 0; t = trie.tokenNext[t]) ids.push(t);
    if (trie.firstChild[c] >= 0) walk(trie, c, next, ids);
  }
}
