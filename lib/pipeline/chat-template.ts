// Chat templates: the text of well-known ones, and rendering a model's own template with @huggingface/jinja.

import * as fs from 'fs';
import * as path from 'path';
import { randomBytes } from 'crypto';
import { Template } from '@huggingface/jinja';
import { HistoryTurn, PromptSegment, mergeSegments, templateText, userText } from './templates';

export type ChatContent = { type: 'image' } | { type: 'text'; text: string };

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: ChatContent[];
}

export interface ChatTemplateOptions {
  /** Append the assistant prefix (default true). */
  addGenerationPrompt?: boolean;
  bosToken?: string;
  eosToken?: string;
}

/** Messages for one request in the HF processor shape: the image first in the first user turn. */
export function chatMessages(question: string, options: { history?: HistoryTurn[]; image?: boolean; system?: string } = {}): ChatMessage[] {
  if (typeof question !== 'string') throw new Error(`question must be a string, got ${typeof question}`);
  const messages: ChatMessage[] = [];
  if (options.system !== undefined) messages.push({ role: 'system', content: [{ type: 'text', text: options.system }] });
  const turns = [...(options.history ?? []), { user: question, assistant: null }];
  turns.forEach((turn, i) => {
    const content: ChatContent[] = i === 0 && options.image !== false ? [{ type: 'image' }] : [];
    content.push({ type: 'text', text: turn.user });
    messages.push({ role: 'user', content });
    if (turn.assistant !== null) messages.push({ role: 'assistant', content: [{ type: 'text', text: turn.assistant }] });
  });
  return messages;
}

/**
 * Renders a model's chat template. Message texts come back as user segments: each text is rendered once as a
 * unique placeholder and once as itself; the two renders must agree once the placeholders are filled in, so a
 * template that changes message text (trim, upper…) is refused rather than guessed at.
 */
export function renderChatTemplate(template: string, messages: ChatMessage[], options: ChatTemplateOptions = {}): PromptSegment[] {
  if (typeof template !== 'string' || template.length === 0) throw new Error('chat template must be a non-empty string');
  let compiled: Template;
  try {
    compiled = new Template(template);
  } catch (e) {
    throw new Error(`chat template does not parse: ${(e as Error).message}`);
  }
  const texts: string[] = [];
  const nonce = randomBytes(8).toString('hex');
  const placeholder = (i: number): string => `\u{F0000}${nonce}:${i}\u{F0001}`;
  const withPlaceholders = messages.map((m) => ({
    ...m,
    content: m.content.map((c): ChatContent => (c.type === 'text' ? { type: 'text', text: placeholder(texts.push(c.text) - 1) } : c)),
  }));
  const render = (msgs: ChatMessage[], content: 'list' | 'string'): string =>
    compiled.render({
      messages: content === 'list' ? msgs : msgs.map(withStringContent),
      add_generation_prompt: options.addGenerationPrompt ?? true,
      bos_token: options.bosToken ?? '',
      eos_token: options.eosToken ?? '',
    });
  // Templates written for string content (nanoLLaVA's ChatML: '...' + message['content']) print a list as its
  // JSON; those get the text with the image as a leading "<image>\n", as the model's README passes it.
  let content: 'list' | 'string' = 'list';
  let marked = render(withPlaceholders, content);
  if (/\{"type": "(text|image)"/.test(marked)) {
    content = 'string';
    marked = render(withPlaceholders, content);
  }
  const segments: PromptSegment[] = [];
  const pattern = new RegExp(`\u{F0000}${nonce}:(\\d+)\u{F0001}`, 'gu');
  let last = 0;
  for (const m of marked.matchAll(pattern)) {
    segments.push(templateText(marked.slice(last, m.index)), userText(texts[Number(m[1])]));
    last = m.index + m[0].length;
  }
  segments.push(templateText(marked.slice(last)));
  const plain = render(messages, content);
  if (segments.map((s) => s.text).join('') !== plain) {
    throw new Error('chat template transforms message text (e.g. trim or upper), so user text cannot be kept apart safely');
  }
  return mergeSegments(segments);
}

/** A message with string content: its image as "<image>\n" before its text (the llava_qwen2 convention). */
function withStringContent(m: ChatMessage): { role: string; content: string } {
  const image = m.content.some((c) => c.type === 'image') ? '<image>\n' : '';
  return { role: m.role, content: image + m.content.map((c) => (c.type === 'text' ? c.text : '')).join('') };
}

/** The chat template a model folder ships: chat_template.jinja, chat_template.json, or tokenizer_config.json. */
export function readChatTemplate(modelDir: string): string | null {
  const jinjaFile = path.join(modelDir, 'chat_template.jinja');
  if (fs.existsSync(jinjaFile)) return fs.readFileSync(jinjaFile, 'utf8');
  for (const file of ['chat_template.json', 'tokenizer_config.json']) {
    const full = path.join(modelDir, file);
    if (!fs.existsSync(full)) continue;
    const template = pickTemplate((JSON.parse(fs.readFileSync(full, 'utf8')) as { chat_template?: unknown }).chat_template, full);
    if (template !== null) return template;
  }
  return null;
}

/** chat_template is a string, or a list of {name, template} where "default" is the one to use. */
function pickTemplate(value: unknown, file: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    const entries = value as Array<{ name?: unknown; template?: unknown } | null>;
    const entry = entries.find((t) => t?.name === 'default') ?? entries[0];
    if (entry && typeof entry.template === 'string') return entry.template;
  }
  throw new Error(`${file}: chat_template is neither a string nor a list of {name, template}`);
}
