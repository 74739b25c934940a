// Prompt templates: the seed's mmpretrain prompts, the original LLaVA conversation modes (llava/conversation.py),
// and custom templates with {{field}} slots.
//
// A rendered prompt is a list of segments. Template text may carry special tokens (<image>, </s>, <|im_start|>…);
// user text (questions, history turns, custom-field values) is marked `user: true` and is always tokenized as plain
// text (see tokens.ts), so a user cannot inject special tokens.

export interface PromptSegment {
  text: string;
  /** True for text that came from a user: never split into special tokens. */
  user: boolean;
}

export const IMAGE_MARKER = '<image>';
/** LLaVA v1 wraps the image in these (mmpretrain `use_im_start_end`, original `mm_use_im_start_end`). */
export const IM_START_MARKER = '<im_start>';
export const IM_END_MARKER = '<im_end>';

export function templateText(text: string): PromptSegment {
  return { text, user: false };
}

export function userText(text: string): PromptSegment {
  return { text, user: true };
}

/** The prompt as one string (what a whole-string tokenizer or a log line sees). */
export function promptToString(segments: readonly PromptSegment[]): string {
  return segments.map((s) => s.text).join('');
}

/** One earlier exchange of a multi-turn conversation. */
export interface HistoryTurn {
  user: string;
  assistant: string;
}

export interface PromptRequest {
  /** The current question (required by VQA and conversation templates; caption templates have their own). */
  question?: string;
  /** Earlier turns, oldest first. The image goes with the first user turn. */
  history?: HistoryTurn[];
  /** Put the image marker in the first user turn (default true). */
  image?: boolean;
  /** Wrap the image marker as <im_start><image><im_end> (LLaVA v1 models). */
  imStartEnd?: boolean;
  /** Replace the template's system prompt. */
  system?: string;
}

const MMPRETRAIN_V15_META =
  "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions.";
const MMPRETRAIN_V1_META =
  'You are LLaVA, a large language and vision assistant trained by UW Madison WAIV Lab.You are able to understand the visual content that the user provides, and assist the user with a variety of tasks using natural language.Follow the instructions carefully and explain your answers in detail.';
/** The seed's caption instruction; also what a prompt asks when no question is given. */
export const CAPTION_INSTRUCTION = 'Describe the image in detail.';

/** The mmpretrain configs' prompts (configs/llava/*.py); note their mixed-case "User:". Single turn only. */
const MMPRETRAIN_TEMPLATES = {
  mmpretrain_v1_caption: { system: MMPRETRAIN_V1_META, image: IM_START_MARKER + IMAGE_MARKER + IM_END_MARKER, question: CAPTION_INSTRUCTION },
  'mmpretrain_v1.5_caption': { system: MMPRETRAIN_V15_META, image: IMAGE_MARKER, question: CAPTION_INSTRUCTION },
  'mmpretrain_v1.5_vqa': { system: MMPRETRAIN_V15_META, image: IMAGE_MARKER, question: null },
} as const;

type SeparatorStyle = 'single' | 'two' | 'mpt' | 'llama_2' | 'plain';

interface ConversationMode {
  system: string;
  roles: [string, string];
  style: SeparatorStyle;
  sep: string;
  sep2?: string;
}

const VICUNA_SYSTEM =
  "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.";
const LLAVA_SYSTEM =
  "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions.";

/** haotian-liu/LLaVA llava/conversation.py conv_templates (the ones LLaVA-1.5/1.6 use). */
const CONVERSATION_MODES = {
  vicuna_v1: { system: VICUNA_SYSTEM, roles: ['USER', 'ASSISTANT'], style: 'two', sep: ' ', sep2: '</s>' },
  llava_v1: { system: LLAVA_SYSTEM, roles: ['USER', 'ASSISTANT'], style: 'two', sep: ' ', sep2: '</s>' },
  llava_v0: { system: LLAVA_SYSTEM, roles: ['Human', 'Assistant'], style: 'single', sep: '###' },
  llava_llama_2: {
    system:
      'You are a helpful language and vision assistant. You are able to understand the visual content that the user provides, and assist the user with a variety of tasks using natural language.',
    roles: ['USER', 'ASSISTANT'],
    style: 'llama_2',
    sep: '<s>',
    sep2: '</s>',
  },
  mistral_instruct: { system: '', roles: ['USER', 'ASSISTANT'], style: 'llama_2', sep: '', sep2: '</s>' },
  chatml_direct: {
    system: '<|im_start|>system\nAnswer the questions.',
    roles: ['<|im_start|>user\n', '<|im_start|>assistant\n'],
    style: 'mpt',
    sep: '<|im_end|>',
  },
  plain: { system: '', roles: ['', ''], style: 'plain', sep: '\n' },
} satisfies Record<string, ConversationMode>;

export type MmpretrainTemplateName = keyof typeof MMPRETRAIN_TEMPLATES;
export type ConversationModeName = keyof typeof CONVERSATION_MODES;
export type TemplateName = MmpretrainTemplateName | ConversationModeName;

export const TEMPLATE_NAMES: readonly TemplateName[] = [
  ...(Object.keys(MMPRETRAIN_TEMPLATES) as MmpretrainTemplateName[]),
  ...(Object.keys(CONVERSATION_MODES) as ConversationModeName[]),
];

export function isTemplateName(name: string): name is TemplateName {
  return (TEMPLATE_NAMES as readonly string[]).includes(name);
}

function requireText(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new Error(`${what} must be a string, got ${value === null ? 'null' : typeof value}`);
  return value;
}

/** Whether the template puts a question (user text) into the prompt; caption templates carry their own instruction. */
export function templateTakesQuestion(name: TemplateName): boolean {
  return !(name in MMPRETRAIN_TEMPLATES) || MMPRETRAIN_TEMPLATES[name as MmpretrainTemplateName].question === null;
}

/** Renders a named template for one request. */
export function renderTemplate(name: TemplateName, request: PromptRequest = {}): PromptSegment[] {
  if (name in MMPRETRAIN_TEMPLATES) return renderMmpretrain(name as MmpretrainTemplateName, request);
  if (name in CONVERSATION_MODES) return renderConversation(CONVERSATION_MODES[name as ConversationModeName], request);
  throw new Error(`unknown prompt template "${String(name)}"; known: ${TEMPLATE_NAMES.join(', ')}`);
}

function renderMmpretrain(name: MmpretrainTemplateName, request: PromptRequest): PromptSegment[] {
  const t = MMPRETRAIN_TEMPLATES[name];
  if (request.history && request.history.length > 0) throw new Error(`template ${name} is single-turn; history is not supported`);
  const system = request.system ?? t.system;
  const image = request.image === false ? '' : t.image + '\n';
  const question = t.question === null ? userText(requireText(request.question, `template ${name}: question`)) : templateText(t.question);
  return [templateText(`${system} User: ${image}`), question, templateText(' ASSISTANT:')];
}

/** One message of a conversation: role index 0 (user) or 1 (assistant); empty text = the open assistant turn. */
interface Message {
  role: 0 | 1;
  segments: PromptSegment[];
}

function conversationMessages(request: PromptRequest): Message[] {
  const imageSegment = request.imStartEnd ? IM_START_MARKER + IMAGE_MARKER + IM_END_MARKER : IMAGE_MARKER;
  const turns = [
    ...(request.history ?? []).map((h, i) => {
      requireText(h?.user, `history[${i}].user`);
      requireText(h?.assistant, `history[${i}].assistant`);
      return h;
    }),
  ];
  const messages: Message[] = [];
  const userMessage = (text: string, first: boolean): Message => ({
    role: 0,
    segments: first && request.image !== false ? [templateText(imageSegment + '\n'), userText(text)] : [userText(text)],
  });
  turns.forEach((turn, i) => {
    messages.push(userMessage(turn.user, i === 0));
    messages.push({ role: 1, segments: [userText(turn.assistant)] });
  });
  messages.push(userMessage(requireText(request.question, 'question'), turns.length === 0));
  messages.push({ role: 1, segments: [] });
  return messages;
}

function isEmpty(segments: PromptSegment[]): boolean {
  return segments.every((s) => s.text.length === 0);
}

/** Mirrors Conversation.get_prompt() for each separator style. */
function renderConversation(mode: ConversationMode, request: PromptRequest): PromptSegment[] {
  const system = request.system ?? mode.system;
  const messages = conversationMessages(request);
  const out: PromptSegment[] = [];
  const t = (text: string): void => {
    out.push(templateText(text));
  };
  switch (mode.style) {
    case 'single':
    case 'two': {
      const seps = mode.style === 'two' ? [mode.sep, mode.sep2 as string] : [mode.sep, mode.sep];
      t(system + seps[0]);
      messages.forEach((m, i) => {
        const role = mode.roles[m.role];
        if (isEmpty(m.segments)) return t(role + ':');
        t(role + ': ');
        out.push(...m.segments);
        t(seps[i % 2]);
      });
      break;
    }
    case 'mpt':
      t(system + mode.sep);
      for (const m of messages) {
        t(mode.roles[m.role]);
        if (!isEmpty(m.segments)) {
          out.push(...m.segments);
          t(mode.sep);
        }
      }
      break;
    case 'llama_2': {
      // ret starts with sep before each [INST]; Python's ret.lstrip(sep) then removes the first one.
      const wrapSystem = system.length > 0 ? `<<SYS>>\n${system}\n<</SYS>>\n\n` : '';
      messages.forEach((m, i) => {
        if (isEmpty(m.segments)) return;
        if (m.role === 0) {
          t((i === 0 ? '' : mode.sep) + '[INST] ' + (i === 0 ? wrapSystem : ''));
          out.push(...m.segments);
          t(' [/INST]');
        } else {
          t(' ');
          out.push(...m.segments);
          t(' ' + mode.sep2);
        }
      });
      break;
    }
    case 'plain':
      if (messages.length > 2) throw new Error('the plain template takes no history (its assistant separator is undefined)');
      t(system);
      out.push(...messages[0].segments);
      t(mode.sep);
      break;
  }
  return mergeSegments(out);
}

/** Joins neighbouring segments of the same kind and drops empty ones (pure tidying; tokenization is unaffected). */
export function mergeSegments(segments: PromptSegment[]): PromptSegment[] {
  const out: PromptSegment[] = [];
  for (const s of segments) {
    if (s.text.length === 0) continue;
    const last = out[out.length - 1];
    if (last && last.user === s.user) last.text += s.text;
    else out.push({ ...s });
  }
  return out;
}

/**
 * The string after which generation should stop for a conversation mode, as llava/serve/cli.py picks it
 * (sep2 for the "two" style, else sep); null when there is none.
 */
export function templateStopString(name: TemplateName): string | null {
  if (!(name in CONVERSATION_MODES)) return null;
  const mode: ConversationMode = CONVERSATION_MODES[name as ConversationModeName];
  const stop = mode.style === 'two' ? mode.sep2 : mode.sep;
  return stop && stop.trim().length > 0 ? stop : null;
}

const FIELD_PATTERN = /\{\{\s*([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)\s*\}\}/g;

/** The {{field}} names a custom template uses, in order of first use (e.g. ["question", "msg.topic"]). */
export function templateFields(template: string): string[] {
  const names: string[] = [];
  for (const m of template.matchAll(FIELD_PATTERN)) if (!names.includes(m[1])) names.push(m[1]);
  return names;
}

/**
 * Fills a custom template's {{field}} slots with the given values: plain string replacement in one pass, so a
 * value is never evaluated or re-scanned for fields. Values become user text (never special tokens); the
 * template's own text may carry <image> and other markers. A field without a value is an error.
 */
export function renderCustomTemplate(template: string, fields: Record<string, string>): PromptSegment[] {
  requireText(template, 'custom template');
  const out: PromptSegment[] = [];
  let last = 0;
  for (const m of template.matchAll(FIELD_PATTERN)) {
    const name = m[1];
    if (!Object.prototype.hasOwnProperty.call(fields, name)) {
      throw new Error(`custom template uses {{${name}}} but no value was given for it`);
    }
    out.push(templateText(template.slice(last, m.index)), userText(requireText(fields[name], `field ${name}`)));
    last = m.index + m[0].length;
  }
  out.push(templateText(template.slice(last)));
  return mergeSegments(out);
}
