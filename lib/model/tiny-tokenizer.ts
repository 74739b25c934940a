// Small but real tokenizers for tiny test models, generated in code (no binaries in git).
//
// llamaTinyTokenizer(): the llava-hf (non-legacy LLaMA) tokenizer.json shape — SentencePiece-style BPE with byte
//   fallback, Metaspace("▁", prepend_scheme "first"), <unk>/<s>/</s> = 0/1/2, byte pieces <0x00>..<0xFF> = 3..258
//   (so "\n" is 13 as in LLaMA), then single characters and a few hundred merges learned from the embedded corpus,
//   then the added tokens <image> and <pad> (and <im_start>/<im_end> for LLaVA v1).
// qwen2TinyTokenizer(): the Qwen2 byte-level BPE shape (NFC, Qwen2 split regex, ByteLevel) with ChatML specials.
//
// Both load in @huggingface/tokenizers (`new Tokenizer(tokenizerJson, tokenizerConfig)`).

import * as fs from 'fs';
import * as path from 'path';
import { LLAVA_15_CHAT_TEMPLATE } from './chat-templates';

export interface TinyTokenizer {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  /** Number of ids (dense 0..vocabSize-1), added tokens included. */
  vocabSize: number;
  imageTokenId: number;
  padTokenId: number;
  /** null for Qwen2 (no BOS). */
  bosTokenId: number | null;
  eosTokenId: number;
  /** Only when built with imStartEnd (LLaVA v1 / mmpretrain v1 caption). */
  imStartTokenId?: number;
  imEndTokenId?: number;
}

export interface TinyLlamaTokenizerOptions {
  /** Add <im_start>/<im_end> special tokens after <image>/<pad> (mmpretrain LLaVA v1). */
  imStartEnd?: boolean;
  /** Number of merges to learn at most (default 400). */
  maxMerges?: number;
  /** tokenizer_config chat_template (default: the llava-hf LLaVA-1.5 template). */
  chatTemplate?: string;
  modelMaxLength?: number;
}

/** English text the merges are learned from: LLaVA prompts, questions and caption-like sentences. */
const CORPUS = `
A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions.
A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.
You are LLaVA, a large language and vision assistant trained by UW Madison WAIV Lab.You are able to understand the visual content that the user provides, and assist the user with a variety of tasks using natural language.Follow the instructions carefully and explain your answers in detail.
You are a helpful language and vision assistant.
USER: Describe the image in detail. ASSISTANT: The image shows a cat sitting on a red chair next to a window.
User: Describe the image in detail. ASSISTANT: The image shows a dog running in the green grass of a park.
USER: What are these? ASSISTANT: These are two cats lying on a pink blanket with remote controls.
USER: What is shown in the image? ASSISTANT: The image shows a street with cars, people and a tall building.
USER: What is the color of the car? ASSISTANT: The car is red.
USER: How many people are in the picture? ASSISTANT: There are three people in the picture.
USER: What is the man holding? ASSISTANT: The man is holding a black umbrella.
USER: Where is the photo taken? ASSISTANT: The photo is taken in a kitchen with a white table.
USER: Please describe this image. ASSISTANT: A woman is standing near the water and looking at the boats.
USER: What should I bring with me when I visit this place? ASSISTANT: You should bring water, a hat and a camera.
Answer the question using a single word or phrase. Answer the questions.
The picture shows a group of people standing in front of a large house. There is a tree on the left side of the image.
In the center of the image there is a small white dog and a brown horse. The sky is blue and the sun is shining.
A bowl of fruit with apples, bananas and oranges is on the wooden table. The light comes from the window.
Two children are playing with a ball on the beach near the sea. The water is calm and the sand is yellow.
This is a photo of a city at night with bright lights, a bridge and a river.
`;

const SPACE = '\u2581'; // ▁
const LLAMA_SPECIALS = ['<unk>', '<s>', '</s>'];
const BYTE_PIECE_COUNT = 256;

function addedToken(id: number, content: string, special = true): Record<string, unknown> {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special };
}

function addedTokensDecoder(tokens: Array<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const t of tokens) {
    const { id, ...rest } = t;
    out[String(id)] = rest;
  }
  return out;
}

/**
 * Greedy BPE training: repeatedly merge the most frequent adjacent pair (ties broken by the pair's text) until
 * maxMerges merges are learned or no pair occurs twice. Words are symbol arrays with counts.
 */
function learnMerges(words: Map<string, number>, split: (w: string) => string[], maxMerges: number): Array<[string, string]> {
  const entries = [...words].map(([w, count]) => ({ symbols: split(w), count }));
  const merges: Array<[string, string]> = [];
  while (merges.length < maxMerges) {
    const pairCounts = new Map<string, number>();
    for (const { symbols, count } of entries) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = symbols[i] + '\u0000' + symbols[i + 1];
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + count);
      }
    }
    let best: string | null = null;
    let bestCount = 1;
    for (const [key, count] of pairCounts) {
      if (count > bestCount || (count === bestCount && best !== null && key < best)) {
        best = key;
        bestCount = count;
      }
    }
    if (best === null) break;
    const [a, b] = best.split('\u0000');
    merges.push([a, b]);
    for (const e of entries) {
      const next: string[] = [];
      for (let i = 0; i < e.symbols.length; i++) {
        if (i + 1 < e.symbols.length && e.symbols[i] === a && e.symbols[i + 1] === b) {
          next.push(a + b);
          i++;
        } else {
          next.push(e.symbols[i]);
        }
      }
      e.symbols = next;
    }
  }
  return merges;
}

function countWords(words: string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const w of words) if (w.length > 0) counts.set(w, (counts.get(w) ?? 0) + 1);
  return counts;
}

function byteHex(b: number): string {
  return '<0x' + b.toString(16).toUpperCase().padStart(2, '0') + '>';
}

/** Builds the llava-hf style LLaMA tokenizer (see file header). */
export function llamaTinyTokenizer(options: TinyLlamaTokenizerOptions = {}): TinyTokenizer {
  const maxMerges = options.maxMerges ?? 400;
  const vocab: Record<string, number> = {};
  let nextId = 0;
  const add = (piece: string): void => {
    if (!(piece in vocab)) vocab[piece] = nextId++;
  };
  LLAMA_SPECIALS.forEach(add);
  for (let b = 0; b < BYTE_PIECE_COUNT; b++) add(byteHex(b));
  add(SPACE);
  for (let c = 33; c <= 126; c++) add(String.fromCharCode(c));

  // SentencePiece words: each space-separated word carries its leading "▁".
  const words = countWords(CORPUS.split(/[ \n]+/).map((w) => SPACE + w));
  const merges = learnMerges(words, (w) => Array.from(w), maxMerges);
  for (const [a, b] of merges) add(a + b);

  const added = [addedToken(0, '<unk>'), addedToken(1, '<s>'), addedToken(2, '</s>')];
  const imageTokenId = nextId++;
  const padTokenId = nextId++;
  added.push(addedToken(imageTokenId, '<image>'), addedToken(padTokenId, '<pad>'));
  let imStartTokenId: number | undefined;
  let imEndTokenId: number | undefined;
  if (options.imStartEnd) {
    imStartTokenId = nextId++;
    imEndTokenId = nextId++;
    added.push(addedToken(imStartTokenId, '<im_start>'), addedToken(imEndTokenId, '<im_end>'));
  }

  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: SPACE, prepend_scheme: 'first', split: false },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } },
        { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    pad_token: '<pad>',
    legacy: false,
    padding_side: 'left',
    model_max_length: options.modelMaxLength ?? 4096,
    tokenizer_class: 'LlamaTokenizer',
    clean_up_tokenization_spaces: false,
    added_tokens_decoder: addedTokensDecoder(added),
    chat_template: options.chatTemplate ?? LLAVA_15_CHAT_TEMPLATE,
  };
  return {
    tokenizerJson,
    tokenizerConfig,
    vocabSize: nextId,
    imageTokenId,
    padTokenId,
    bosTokenId: 1,
    eosTokenId: 2,
    ...(imStartTokenId !== undefined ? { imStartTokenId, imEndTokenId } : {}),
  };
}

/** ChatML with images first in each turn (written for the tiny Qwen2 models; not a copy of a Hub template). */
export const TINY_CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}" +
  "{% if message['content'] is string %}{{ message['content'] }}{% else %}" +
  "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\\n' }}{% endfor %}" +
  "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] }}{% endfor %}" +
  "{% endif %}{{ '<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** The Qwen2 pre-tokenizer split pattern (as in Qwen2's tokenizer.json). */
const QWEN2_SPLIT_PATTERN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** The same pattern in JavaScript syntax (no inline (?i:) group), used only to cut the training corpus. */
const QWEN2_SPLIT_JS = /'(?:[sStTmMdD]|[rR][eE]|[vV][eE]|[lL][lL])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;

/** GPT-2 byte → printable character table used by ByteLevel pre-tokenizers and decoders. */
export function bytesToUnicode(): string[] {
  const table = new Array<string>(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    table[b] = String.fromCodePoint(printable ? b : 256 + extra++);
  }
  return table;
}

/** Builds a Qwen2-style byte-level tokenizer with <|endoftext|>, <|im_start|>, <|im_end|>, <image> (in that order). */
export function qwen2TinyTokenizer(options: { maxMerges?: number; chatTemplate?: string; modelMaxLength?: number } = {}): TinyTokenizer {
  const byteChars = bytesToUnicode();
  const vocab: Record<string, number> = {};
  let nextId = 0;
  const add = (piece: string): void => {
    if (!(piece in vocab)) vocab[piece] = nextId++;
  };
  byteChars.forEach(add);

  const encoder = new TextEncoder();
  const toByteLevel = (s: string): string => Array.from(encoder.encode(s), (b) => byteChars[b]).join('');
  const words = countWords((CORPUS.normalize('NFC').match(QWEN2_SPLIT_JS) ?? []).map(toByteLevel));
  const merges = learnMerges(words, (w) => Array.from(w), options.maxMerges ?? 400);
  for (const [a, b] of merges) add(a + b);

  const endOfTextId = nextId++;
  const imStartId = nextId++;
  const imEndId = nextId++;
  const imageTokenId = nextId++;
  const added = [
    addedToken(endOfTextId, '<|endoftext|>'),
    addedToken(imStartId, '<|im_start|>'),
    addedToken(imEndId, '<|im_end|>'),
    addedToken(imageTokenId, '<image>'),
  ];
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false };
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: { type: 'NFC' },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [{ type: 'Split', pattern: { Regex: QWEN2_SPLIT_PATTERN }, behavior: 'Isolated', invert: false }, byteLevel],
    },
    post_processor: byteLevel,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  const tokenizerConfig = {
    add_prefix_space: false,
    bos_token: null,
    eos_token: '<|im_end|>',
    pad_token: '<|endoftext|>',
    unk_token: null,
    padding_side: 'left',
    model_max_length: options.modelMaxLength ?? 32768,
    tokenizer_class: 'Qwen2Tokenizer',
    clean_up_tokenization_spaces: false,
    split_special_tokens: false,
    added_tokens_decoder: addedTokensDecoder(added),
    chat_template: options.chatTemplate ?? TINY_CHATML_TEMPLATE,
  };
  return {
    tokenizerJson,
    tokenizerConfig,
    vocabSize: nextId,
    imageTokenId,
    padTokenId: endOfTextId,
    bosTokenId: null,
    eosTokenId: imEndId,
  };
}

/** Writes tokenizer.json and tokenizer_config.json into dir (created if missing). */
export function writeTinyTokenizer(dir: string, tokenizer: TinyTokenizer): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer.tokenizerJson));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizer.tokenizerConfig, null, 2));
}
