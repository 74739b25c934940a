// Prompt → token ids, with the image slot(s) laid out the way each LLaVA code base does it, and user text kept
// from ever becoming special tokens.
//
// Encoding mirrors @huggingface/tokenizers' own encode (added-token split → normalizer → pre-tokenizer with the
// section index → model → post-processor) but splits special tokens out of template segments only. Text sections
// are formed across segment borders exactly as in whole-string tokenization, so a prompt whose user text holds no
// added token gives the same ids as tokenizer.encode(wholeString). Added tokens are matched in the raw text (the
// library matches `normalized: true` ones after normalizing; LLaMA/llava-hf/Qwen2 added tokens are all unnormalized).
// Chunk-wise styles follow the fast (tokenizer.json) tokenizer: a chunk that starts with a space gets no extra "▁",
// where slow SentencePiece would add one; LLaVA's templates put "\n" after <image>, so their ids are the same.

import * as fs from 'fs';
import * as path from 'path';
import { Tokenizer } from '@huggingface/tokenizers';
import { readChatTemplate } from './chat-template';
import { IMAGE_MARKER, PromptSegment, templateText } from './templates';

/**
 * hf: the llava-hf processor — <image> expanded to imageTokenCount image-token ids, one whole-prompt encode, BOS by
 *     the post-processor.
 * original: haotian-liu tokenizer_image_token — each chunk between <image> markers encoded with BOS; the first
 *     BOS kept, every later chunk's first id dropped; features spliced at the slot.
 * mmpretrain: Llava.preprocess_text — each chunk encoded without special tokens, no BOS; features spliced at the slot.
 */
export type TokenizationStyle = 'hf' | 'original' | 'mmpretrain';

export const TOKENIZATION_STYLES: readonly TokenizationStyle[] = ['hf', 'original', 'mmpretrain'];

export interface EncodePromptOptions {
  /** Feature rows per image (576 for CLIP-L/336 with CLS dropped). */
  imageTokenCount: number;
  style?: TokenizationStyle;
  /**
   * Add the post-processor's special tokens (BOS) in 'hf'/'original'. Default: true, unless the prompt's template
   * text already starts with the BOS token (chat templates that print bos_token).
   */
  addSpecialTokens?: boolean;
}

export interface EncodedPrompt {
  /** The sequence the decoder sees, image rows included; image rows hold imagePlaceholderId. */
  ids: number[];
  /** Indices into ids where image feature rows go: imageCount × imageTokenCount entries, in order. */
  imagePositions: number[];
  imageCount: number;
  /** The id at image rows: the tokenizer's image token, else pad, else unk, else 0. */
  imagePlaceholderId: number;
  style: TokenizationStyle;
}

interface AddedTokenInfo {
  id: number;
  content: string;
  special: boolean;
  lstrip: boolean;
  rstrip: boolean;
}

type Section = { token: AddedTokenInfo } | { text: string };

function readJson(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${path.basename(file)}: ${(e as Error).message}`);
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('not a JSON object');
    return value as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${path.basename(file)} is not valid: ${(e as Error).message}`);
  }
}

/** tokenizer_config.json token entries are a string or an AddedToken object {content, …}. */
function tokenContent(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return null;
}

/** Longest-match splitting on a fixed set of token strings (what the library's added-token splitter does). */
class TokenSplitter {
  private readonly byFirstChar = new Map<string, AddedTokenInfo[]>();

  constructor(tokens: AddedTokenInfo[]) {
    for (const t of tokens) {
      if (t.content.length === 0) continue;
      const list = this.byFirstChar.get(t.content[0]) ?? [];
      list.push(t);
      this.byFirstChar.set(t.content[0], list);
    }
    for (const list of this.byFirstChar.values()) list.sort((a, b) => b.content.length - a.content.length);
  }

  split(text: string): Section[] {
    const out: Section[] = [];
    let start = 0;
    for (let i = 0; i < text.length;) {
      const match = this.byFirstChar.get(text[i])?.find((t) => text.startsWith(t.content, i));
      if (match) {
        if (i > start) out.push({ text: text.slice(start, i) });
        out.push({ token: match });
        i += match.content.length;
        start = i;
      } else {
        i++;
      }
    }
    if (start < text.length) out.push({ text: text.slice(start) });
    return out;
  }
}

export class PromptTokenizer {
  readonly tokenizer: Tokenizer;
  readonly bosTokenId: number | null;
  readonly eosTokenId: number | null;
  readonly padTokenId: number | null;
  readonly unkTokenId: number | null;
  /** The id of "<image>" when the tokenizer has it as an added token (llava-hf), else null. */
  readonly imageTokenId: number | null;
  /** Ids of special tokens (added tokens marked special). */
  readonly specialTokenIds: ReadonlySet<number>;
  /** The model's chat template, when loaded from a folder that has one. */
  readonly chatTemplate: string | null;
  private readonly bosToken: string | null;
  private readonly specialContents: ReadonlySet<string>;
  private readonly templateSplitter: TokenSplitter;
  private readonly userSplitter: TokenSplitter;

  constructor(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown> = {}, chatTemplate: string | null = null) {
    if (tokenizerConfig.remove_space || tokenizerConfig.do_lowercase_and_remove_accent) {
      throw new Error('tokenizer_config options remove_space / do_lowercase_and_remove_accent are not supported');
    }
    try {
      this.tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
    } catch (e) {
      throw new Error(`tokenizer.json cannot be loaded: ${(e as Error).message}`);
    }
    const added: AddedTokenInfo[] = [...this.tokenizer.get_added_tokens_decoder().values()].map((t) => ({
      id: t.id,
      content: t.content,
      special: t.special,
      lstrip: t.lstrip,
      rstrip: t.rstrip,
    }));
    const extraSpecial = new Set(((tokenizerConfig.additional_special_tokens as unknown[] | undefined) ?? []).map(tokenContent));
    for (const t of added) if (extraSpecial.has(t.content)) t.special = true;
    this.specialContents = new Set(added.filter((t) => t.special).map((t) => t.content));
    this.specialTokenIds = new Set(added.filter((t) => t.special).map((t) => t.id));
    this.templateSplitter = new TokenSplitter(added);
    this.userSplitter = new TokenSplitter(added.filter((t) => !t.special));

    const idOf = (key: string): number | null => {
      const content = tokenContent(tokenizerConfig[key]);
      return content === null ? null : (this.tokenizer.token_to_id(content) ?? null);
    };
    this.bosToken = tokenContent(tokenizerConfig.bos_token);
    this.bosTokenId = idOf('bos_token');
    this.eosTokenId = idOf('eos_token');
    this.padTokenId = idOf('pad_token');
    this.unkTokenId = this.tokenizer.model?.unk_token_id ?? idOf('unk_token');
    this.imageTokenId = added.find((t) => t.content === IMAGE_MARKER)?.id ?? null;
    this.chatTemplate = chatTemplate ?? (typeof tokenizerConfig.chat_template === 'string' ? tokenizerConfig.chat_template : null);
  }

  /** Loads tokenizer.json (required), tokenizer_config.json and the chat template from a model folder. */
  static fromFolder(dir: string): PromptTokenizer {
    const jsonFile = path.join(dir, 'tokenizer.json');
    if (!fs.existsSync(jsonFile)) throw new Error(`no tokenizer.json in model folder ${path.basename(dir)}`);
    const configFile = path.join(dir, 'tokenizer_config.json');
    const config = fs.existsSync(configFile) ? readJson(configFile) : {};
    return new PromptTokenizer(readJson(jsonFile), config, readChatTemplate(dir));
  }

  /** Encodes a prompt: a plain string is all template text; segments keep user text apart (see templates.ts). */
  encodePrompt(prompt: string | readonly PromptSegment[], options: EncodePromptOptions): EncodedPrompt {
    const segments = typeof prompt === 'string' ? [templateText(prompt)] : prompt;
    const style = options.style ?? 'hf';
    if (!TOKENIZATION_STYLES.includes(style)) throw new Error(`unknown tokenization style "${style}"; use ${TOKENIZATION_STYLES.join(', ')}`);
    const count = options.imageTokenCount;
    if (!Number.isInteger(count) || count < 0) throw new Error(`imageTokenCount must be a whole number ≥ 0, got ${count}`);
    const addSpecial = options.addSpecialTokens ?? !this.startsWithBos(segments);
    const chunks = splitAtImageMarkers(segments);
    const imageCount = chunks.length - 1;
    if (imageCount > 0 && count === 0) throw new Error(`the prompt has ${imageCount} ${IMAGE_MARKER} marker(s) but imageTokenCount is 0`);
    const imagePlaceholderId = this.imageTokenId ?? this.padTokenId ?? this.unkTokenId ?? 0;

    const ids: number[] = [];
    const imagePositions: number[] = [];
    const pushImage = (): void => {
      for (let k = 0; k < count; k++) {
        imagePositions.push(ids.length);
        ids.push(imagePlaceholderId);
      }
    };
    if (style === 'hf') {
      if (imageCount > 0 && this.imageTokenId === null) {
        throw new Error(`style 'hf' needs ${IMAGE_MARKER} as an added token of the tokenizer; use style 'original' or 'mmpretrain'`);
      }
      for (const id of this.encodeSegments(segments, addSpecial)) {
        if (id === this.imageTokenId) pushImage();
        else ids.push(id);
      }
    } else {
      const encoded = chunks.map((chunk) => this.encodeSegments(chunk, style === 'original' && addSpecial));
      // tokenizer_image_token: when the first chunk starts with BOS, keep that one BOS and drop every chunk's first id.
      const offset = style === 'original' && this.bosTokenId !== null && encoded[0][0] === this.bosTokenId ? 1 : 0;
      if (offset) ids.push(this.bosTokenId as number);
      encoded.forEach((chunkIds, i) => {
        if (i > 0) pushImage();
        ids.push(...chunkIds.slice(offset));
      });
    }
    return { ids, imagePositions, imageCount, imagePlaceholderId, style };
  }

  /** Encodes segments as one text: template text may hold special tokens, user text never does. */
  encodeSegments(segments: readonly PromptSegment[], addSpecialTokens: boolean): number[] {
    const sections: Section[] = [];
    for (const segment of segments) {
      const splitter = segment.user ? this.userSplitter : this.templateSplitter;
      for (const piece of splitter.split(segment.text)) {
        const last = sections[sections.length - 1];
        if ('text' in piece && last && 'text' in last) last.text += piece.text;
        else sections.push(piece);
      }
    }
    sections.forEach((s, i) => {
      if (!('token' in s)) return;
      const before = sections[i - 1];
      const after = sections[i + 1];
      if (s.token.lstrip && before && 'text' in before) before.text = before.text.trimEnd();
      if (s.token.rstrip && after && 'text' in after) after.text = after.text.trimStart();
    });
    const tokens = sections.flatMap((s, index) => ('token' in s ? [s.token.content] : this.encodeText(s.text, index)));
    const processed = this.tokenizer.post_processor ? this.tokenizer.post_processor(tokens, null, addSpecialTokens).tokens : tokens;
    return processed.map((t) => this.tokenizer.token_to_id(t) ?? this.unkTokenId ?? 0);
  }

  /** One text section through normalizer, pre-tokenizer (Metaspace "first" needs the section index) and model. */
  private encodeText(text: string, sectionIndex: number): string[] {
    const { normalizer, pre_tokenizer: preTokenizer, model } = this.tokenizer;
    if (!model) throw new Error('tokenizer.json has no model');
    const normalized = normalizer ? normalizer(text) : text;
    if (normalized.length === 0) return [];
    const words = preTokenizer ? preTokenizer(normalized, { section_index: sectionIndex }) : [normalized];
    const tokens = model(words);
    for (const t of tokens) {
      // Defence in depth: a vocabulary could let merges spell a special token; text must never become one.
      if (this.specialContents.has(t) && this.tokenizer.token_to_id(t) !== this.unkTokenId) {
        throw new Error(`text tokenized into the special token ${JSON.stringify(t)}; refusing to continue`);
      }
    }
    return tokens;
  }

  private startsWithBos(segments: readonly PromptSegment[]): boolean {
    const first = segments.find((s) => s.text.length > 0);
    return this.bosToken !== null && first !== undefined && !first.user && first.text.startsWith(this.bosToken);
  }

  decode(ids: readonly number[], options: { skipSpecial?: boolean } = {}): string {
    if (ids.length === 0) return '';
    return this.tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecial ?? false });
  }
}

/** Splits segments into chunks at each <image> marker in template text (user text never makes an image slot). */
function splitAtImageMarkers(segments: readonly PromptSegment[]): PromptSegment[][] {
  const chunks: PromptSegment[][] = [[]];
  for (const s of segments) {
    if (s.user) {
      chunks[chunks.length - 1].push(s);
      continue;
    }
    s.text.split(IMAGE_MARKER).forEach((part, i) => {
      if (i > 0) chunks.push([]);
      if (part.length > 0) chunks[chunks.length - 1].push(templateText(part));
    });
  }
  return chunks;
}

/**
 * Throws when the prompt (text and image rows) plus the tokens to generate does not fit the model's positions.
 * The message names the prompt length and the limit.
 */
export function assertFitsContext(prompt: EncodedPrompt, maxPositions: number, reserveNewTokens = 0): void {
  const needed = prompt.ids.length + reserveNewTokens;
  if (needed <= maxPositions) return;
  const imageRows = prompt.imagePositions.length;
  const parts = `${prompt.ids.length - imageRows} text + ${imageRows} image tokens` + (reserveNewTokens ? ` + ${reserveNewTokens} new tokens` : '');
  throw new Error(`prompt needs ${needed} positions (${parts}) but the model has only ${maxPositions}`);
}
