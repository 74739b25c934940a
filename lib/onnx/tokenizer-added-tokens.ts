// Appends special tokens to a copied tokenizer.json. A converted checkpoint can have embedding rows for tokens its
// Hub tokenizer lacks: mmpretrain's Llava adds <im_start>/<im_end> to the tokenizer when it builds the model
// (add_tokens(..., special_tokens=True), then resize_token_embeddings), so they are only in the weights.
import * as fs from 'fs';

export interface SpecialToken {
  id: number;
  content: string;
}

interface AddedTokenEntry {
  id: number;
  content: string;
  [key: string]: unknown;
}

interface TokenizerJson {
  added_tokens?: AddedTokenEntry[];
  model?: { vocab?: unknown };
}

/**
 * The added_tokens entries `tokens` need, as transformers' add_tokens(special_tokens=True) makes them (special, not
 * normalized, no strip). A token already there with the same id needs none; a missing one must take the next free
 * id, as add_tokens would give it; anything else is an error.
 */
function missingEntries(json: TokenizerJson, tokens: readonly SpecialToken[]): AddedTokenEntry[] {
  const added = json.added_tokens ?? [];
  const vocab = json.model?.vocab;
  const vocabIds = new Map<string, number>(vocab && typeof vocab === 'object' && !Array.isArray(vocab) ? Object.entries(vocab as Record<string, number>) : []);
  let size = 0;
  for (const id of [...vocabIds.values(), ...added.map((t) => t.id)]) size = Math.max(size, id + 1);
  const entries: AddedTokenEntry[] = [];
  for (const token of tokens) {
    const existing = added.find((t) => t.content === token.content)?.id ?? vocabIds.get(token.content);
    if (existing === token.id) continue;
    if (existing !== undefined) {
      throw new Error(`the tokenizer has ${token.content} as id ${existing}, but the checkpoint's embeddings use id ${token.id}`);
    }
    if (token.id !== size) {
      throw new Error(
        `the tokenizer has ${size} tokens, so ${token.content} would be added as id ${size}, but the checkpoint's embeddings ` +
          `use id ${token.id}: is this the tokenizer the checkpoint was trained with?`,
      );
    }
    entries.push({ id: token.id, content: token.content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
    size++;
  }
  return entries;
}

function readTokenizerJson(file: string): TokenizerJson {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as TokenizerJson;
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message}`);
  }
}

/** Throws when appendSpecialTokens would (so a build can fail before it writes gigabytes). */
export function checkSpecialTokens(tokenizerJsonFile: string, tokens: readonly SpecialToken[]): void {
  missingEntries(readTokenizerJson(tokenizerJsonFile), tokens);
}

/** Adds the tokens tokenizer.json lacks to its added_tokens, in place. */
export function appendSpecialTokens(tokenizerJsonFile: string, tokens: readonly SpecialToken[]): void {
  const json = readTokenizerJson(tokenizerJsonFile);
  const entries = missingEntries(json, tokens);
  if (entries.length === 0) return;
  json.added_tokens = [...(json.added_tokens ?? []), ...entries];
  fs.writeFileSync(tokenizerJsonFile, JSON.stringify(json));
}
