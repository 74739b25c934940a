// Turns a request (a question, or a full prompt written by hand) into prompt segments with the preset's template.
import type { LlavaPreset } from './presets';
import { LLAVA_15_CHAT_TEMPLATE } from '../model/chat-templates';
import { chatMessages, renderChatTemplate } from './chat-template';
import { CAPTION_INSTRUCTION, HistoryTurn, IMAGE_MARKER, PromptSegment, renderCustomTemplate, renderTemplate, templateText } from './templates';

export interface PromptInput {
  /** A whole prompt. With `<image>` it is used as written; without, it is the question put into the template. */
  prompt?: string;
  question?: string;
  history?: HistoryTurn[];
  system?: string;
  /** Whether the prompt gets an image slot (default true). */
  image?: boolean;
}

export function buildPrompt(preset: LlavaPreset, chatTemplate: string | null, input: PromptInput): PromptSegment[] {
  if (input.prompt !== undefined && input.question !== undefined) {
    throw new Error('give either a prompt or a question, not both');
  }
  if (input.prompt !== undefined && input.prompt.includes(IMAGE_MARKER)) return [templateText(input.prompt)];
  const question = input.prompt ?? input.question ?? CAPTION_INSTRUCTION;
  if (question.trim() === '') throw new Error(`the ${input.prompt !== undefined ? 'prompt' : 'question'} is empty`);
  const image = input.image !== false;
  switch (preset.prompt.kind) {
    case 'template':
      return renderTemplate(preset.prompt.template, {
        question,
        history: input.history,
        system: input.system,
        imStartEnd: preset.imStartEnd,
        image,
      });
    case 'chat-template':
      return renderChatTemplate(chatTemplate ?? LLAVA_15_CHAT_TEMPLATE, chatMessages(question, { history: input.history, system: input.system, image }));
    case 'custom':
      return renderCustomTemplate(preset.prompt.template, { question });
  }
}
