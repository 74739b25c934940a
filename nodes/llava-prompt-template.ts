// prompt template: the conversation prompt with <image>, from a named template, the model's chat template or a
// custom template with {{question}} and {{msg.<path>}} fields. The template comes from the node's configuration;
// message content only fills fields, as plain text that can never become special tokens.
import type { Node, NodeAPI, NodeDef, NodeMessage } from 'node-red';
import { isTemplateName, renderCustomTemplate, renderTemplate, templateFields, templateTakesQuestion, PromptSegment } from '../lib/pipeline/templates';
import { handleInput } from './shared/input';
import { ModelClient, useModel } from './shared/model-client';
import { describeProperty, readProperty, typedProperty, TypedProperty, writeProperty } from './shared/properties';
import { StatusReporter } from './shared/status';

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
}

function fieldText(value: unknown, field: string): string {
  if (value === undefined || value === null) throw new Error(`template field {{${field}}} is empty`);
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) throw new Error(`template field {{${field}}} is binary data, not text`);
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

export = function register(RED: NodeAPI): void {
  function PromptTemplateNode(this: Node, def: PromptTemplateDef): void {
    RED.nodes.createNode(this, def);
    const node = this;
    const status = new StatusReporter(this);
    const questionProp = typedProperty(def.question, def.questionType, 'msg.payload');
    const output = typedProperty(def.output, def.outputType, 'msg.llava.prompt');
    const system = def.system ? def.system : undefined;
    const preset = def.preset || 'model';
    if (preset !== 'model' && preset !== 'custom' && !isTemplateName(preset)) {
      status.error(`unknown template ${preset}`);
    }
    const client: ModelClient | null = preset === 'model' ? useModel(RED, this, def.model, status) : null;

    async function question(msg: NodeMessage, prop: TypedProperty): Promise<string> {
      const value = await readProperty(RED, node, prop, msg);
      if (typeof value !== 'string' || value.trim() === '') {
        throw new Error(`${describeProperty(prop)} must hold the question as text, got ${value === undefined ? 'nothing' : Buffer.isBuffer(value) ? 'a Buffer' : typeof value}`);
      }
      return value;
    }

    async function render(msg: NodeMessage): Promise<PromptSegment[]> {
      const msgTemplate = (msg as { template?: unknown }).template;
      if (def.allowMsgTemplate && typeof msgTemplate === 'string' && msgTemplate) return renderCustom(msgTemplate, msg);
      if (preset === 'custom') return renderCustom(def.template, msg);
      if (preset === 'model') {
        const model = await (client as ModelClient).model();
        const p = model.preset.prompt;
        // A caption preset's template carries its own instruction: no question to read.
        const asks = p.kind !== 'template' || templateTakesQuestion(p.template);
        return model.prompt({ question: asks ? await question(msg, questionProp) : undefined, system });
      }
      if (!isTemplateName(preset)) throw new Error(`unknown template "${preset}"`);
      return renderTemplate(preset, {
        question: templateTakesQuestion(preset) ? await question(msg, questionProp) : undefined,
        system,
      });
    }

    async function renderCustom(template: string, msg: NodeMessage): Promise<PromptSegment[]> {
      const fields: Record<string, string> = {};
      for (const field of templateFields(template)) {
        if (field === 'question') fields.question = await question(msg, questionProp);
        else if (field.startsWith('msg.')) fields[field] = fieldText(RED.util.getMessageProperty(msg, field.slice(4)), field);
        else throw new Error(`template field {{${field}}} is not known: use {{question}} or {{msg.<path>}}`);
      }
      return renderCustomTemplate(template, fields);
    }

    handleInput(this, {
      status,
      process: async (msg, send) => {
        writeProperty(RED, this, output, msg, await render(msg));
        send(msg);
      },
    });
  }
  RED.nodes.registerType('llava-prompt-template', PromptTemplateNode);
};
