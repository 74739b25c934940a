// prompt template: the conversation prompt with <image>, from a named template, the model's chat template or a
// custom template with {{question}} and {{msg.<path>}} fields; and msg.llava.chat, the question and system prompt
// as a chat, which is what a remote engine is sent. The template comes from the node's configuration;
// message content only fills fields, as plain text that can never become special tokens. A table topic → question
// (one question per camera) picks the question by msg.topic; other topics get the Question property.
import type { NodeDef, NodeMessage } from 'node-red';
import type { ChatPrompt } from '../lib/engine/types';
import {
  IM_END_MARKER,
  IM_START_MARKER,
  IMAGE_MARKER,
  isTemplateName,
  promptToString,
  renderCustomTemplate,
  renderTemplate,
  templateFields,
  templateTakesQuestion,
  PromptSegment,
  TemplateName,
} from '../lib/pipeline/templates';
import { topicKey } from './shared/input';
import { defineNode, Kit } from './shared/kit';

interface PromptTemplateDef extends NodeDef {
  model: string;
  preset: string;
  template: string;
  system: string;
  question: string;
  questionType: string;
  allowMsgTemplate: boolean;
  output: string;
  outputType: string;
  /** Questions per msg.topic (flows saved before the table have none). */
  questions?: unknown;
}

function fieldText(value: unknown, field: string): string {
  if (value === undefined || value === null) throw new Error(`template field {{${field}}} is empty`);
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) throw new Error(`template field {{${field}}} is binary data, not text`);
  return typeof value === 'object' ? JSON.stringify(value) : String(value as string | number | boolean);
}

type Preset = 'model' | 'custom' | TemplateName;

interface Config {
  preset: Preset;
  /** msg.topic → question. */
  questions: Map<string, string>;
}

/** The editor's table [{topic, question}], checked: each topic once, every question text. */
function questionsByTopic(rows: unknown): Map<string, string> {
  const byTopic = new Map<string, string>();
  if (rows === undefined || rows === null || rows === '') return byTopic;
  if (!Array.isArray(rows)) throw new Error('the questions per topic must be a list of {topic, question}');
  rows.forEach((row: { topic?: unknown; question?: unknown } | null, i) => {
    const { topic, question } = row ?? {};
    if (typeof topic !== 'string' || topic === '') throw new Error(`questions per topic, row ${i + 1}: the topic is empty`);
    if (typeof question !== 'string' || question.trim() === '') throw new Error(`questions per topic, row ${i + 1} (topic ${topic}): the question is empty`);
    if (byTopic.has(topic)) throw new Error(`questions per topic: topic ${topic} is listed twice`);
    byTopic.set(topic, question);
  });
  return byTopic;
}

/** The question for msg.topic from the table, or else the Question property. */
async function question(kit: Kit<PromptTemplateDef, Config>, msg: NodeMessage): Promise<string> {
  const perTopic = kit.config.questions.get(topicKey(msg));
  if (perTopic !== undefined) return perTopic;
  const value = await kit.read('question', msg);
  if (typeof value !== 'string' || value.trim() === '') {
    throw new Error(
      `${kit.describe('question')} must hold the question as text, got ${value === undefined ? 'nothing' : Buffer.isBuffer(value) ? 'a Buffer' : typeof value}`,
    );
  }
  return value;
}

/**
 * The prompt for the local engine (segments, or the question as text when the model's own template is asked for
 * and the engine is remote) and the chat any engine understands (a remote server applies its own template to it).
 */
interface Rendered {
  prompt: PromptSegment[] | string;
  chat: ChatPrompt;
}

async function renderCustom(kit: Kit<PromptTemplateDef, Config>, template: string, msg: NodeMessage): Promise<Rendered> {
  const fields: Record<string, string> = {};
  for (const field of templateFields(template)) {
    if (field === 'question') fields.question = await question(kit, msg);
    else if (field.startsWith('msg.')) fields[field] = fieldText(kit.RED.util.getMessageProperty(msg, field.slice(4)), field);
    else throw new Error(`template field {{${field}}} is not known: use {{question}} or {{msg.<path>}}`);
  }
  const prompt = renderCustomTemplate(template, fields);
  // For a remote engine the whole filled-in text is the question, without the image markers.
  const text = promptToString(prompt).split(IMAGE_MARKER).join('').replace(IM_START_MARKER, '').replace(IM_END_MARKER, '').trim();
  return { prompt, chat: text ? { question: text } : {} };
}

async function render(kit: Kit<PromptTemplateDef, Config>, msg: NodeMessage): Promise<Rendered> {
  const { def } = kit;
  const { preset } = kit.config;
  const system = def.system ? def.system : undefined;
  const msgTemplate = (msg as { template?: unknown }).template;
  if (def.allowMsgTemplate && typeof msgTemplate === 'string' && msgTemplate) return renderCustom(kit, msgTemplate, msg);
  if (preset === 'custom') return renderCustom(kit, def.template, msg);
  const chat = (asks: boolean) => async (): Promise<ChatPrompt> => ({
    ...(asks ? { question: await question(kit, msg) } : {}),
    ...(system !== undefined ? { system } : {}),
  });
  if (preset === 'model') {
    const engine = await kit.engine();
    if (engine.kind === 'remote') {
      const c = await chat(true)();
      return { prompt: c.question ?? '', chat: c };
    }
    const model = await kit.model();
    const p = model.preset.prompt;
    // A caption preset's template carries its own instruction: no question to read.
    const asks = p.kind !== 'template' || templateTakesQuestion(p.template);
    const c = await chat(asks)();
    return { prompt: model.prompt(c), chat: c };
  }
  const c = await chat(templateTakesQuestion(preset))();
  return { prompt: renderTemplate(preset, c), chat: c };
}

export = defineNode<PromptTemplateDef, Config>({
  type: 'llava-prompt-template',
  properties: { question: 'msg.payload', output: 'msg.llava.prompt' },
  usesModel: (def) => (def.preset || 'model') === 'model',
  configure: (def) => {
    const preset = def.preset || 'model';
    if (preset !== 'model' && preset !== 'custom' && !isTemplateName(preset)) throw new Error(`unknown template "${preset}"`);
    return { preset, questions: questionsByTopic(def.questions) };
  },
  process: async (kit, msg, out) => {
    const { prompt, chat } = await render(kit, msg);
    kit.write('output', msg, prompt);
    ((msg as { llava?: Record<string, unknown> }).llava ??= {}).chat = chat;
    out(msg);
  },
});
