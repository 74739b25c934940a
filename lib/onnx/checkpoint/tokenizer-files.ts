// The tokenizer files of a Hugging Face folder, and the ids of added tokens they define.
import * as fs from 'fs';
import * as path from 'path';

const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'tokenizer.model',
  'chat_template.json',
  'chat_template.jinja',
];

/** Absolute paths of the tokenizer and chat-template files present in `dir`. */
export function tokenizerFilesIn(dir: string): string[] {
  return filesIn(dir, TOKENIZER_FILES);
}

export function filesIn(dir: string, names: string[]): string[] {
  return names.map((n) => path.join(dir, n)).filter((f) => fs.existsSync(f));
}

/** The id of an added token (added_tokens.json, else tokenizer.json's added_tokens), or undefined. */
export function addedTokenId(files: string[], content: string): number | undefined {
  for (const file of files) {
    const name = path.basename(file);
    if (name !== 'added_tokens.json' && name !== 'tokenizer.json') continue;
    let json: unknown;
    try {
      json = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new Error(`${file} is not valid JSON: ${(e as Error).message}`);
    }
    if (name === 'added_tokens.json') {
      const id = (json as Record<string, unknown>)[content];
      if (typeof id === 'number') return id;
    } else {
      const added = (json as { added_tokens?: Array<{ id: number; content: string }> }).added_tokens ?? [];
      const token = added.find((t) => t.content === content);
      if (token) return token.id;
    }
  }
  return undefined;
}
