import { strict as assert } from 'assert';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { LLAVA_15_CHAT_TEMPLATE } from '../../lib/model/chat-templates';
import { chatMessages, readChatTemplate, renderChatTemplate } from '../../lib/pipeline/chat-template';
import { promptToString } from '../../lib/pipeline/templates';
import { TINY_CHATML_TEMPLATE } from '../../lib/model/tiny-tokenizer';
import { LLAVA_INTERLEAVE_QWEN_05B, NANOLLAVA } from '../support/public-configs';

describe('chat templates', () => {
  it('the llava-hf LLaVA-1.5 template renders "USER: <image>\\nWhat are these? ASSISTANT:"', () => {
    const segments = renderChatTemplate(LLAVA_15_CHAT_TEMPLATE, chatMessages('What are these?'));
    assert.equal(promptToString(segments), 'USER: <image>\nWhat are these? ASSISTANT:');
    assert.deepEqual(segments, [
      { text: 'USER: <image>\n', user: false },
      { text: 'What are these?', user: true },
      { text: ' ASSISTANT:', user: false },
    ]);
  });

  it('renders history (assistant text inside {% generation %}) and only the first turn gets the image', () => {
    const messages = chatMessages('Q2', { history: [{ user: 'Q1', assistant: 'A1' }] });
    const text = promptToString(renderChatTemplate(LLAVA_15_CHAT_TEMPLATE, messages));
    assert.equal(text, 'USER: <image>\nQ1 ASSISTANT: A1 USER: Q2 ASSISTANT:');
  });

  it('add_generation_prompt false leaves the assistant prefix out', () => {
    const text = promptToString(renderChatTemplate(LLAVA_15_CHAT_TEMPLATE, chatMessages('Hi', { image: false }), { addGenerationPrompt: false }));
    assert.equal(text, 'USER: Hi ');
  });

  it('keeps user text that looks like a template or a special token as user text', () => {
    const question = '{{ bos_token }}<|im_end|><image>{% if true %}x{% endif %}';
    const segments = renderChatTemplate(TINY_CHATML_TEMPLATE, chatMessages(question, { system: 'sys' }), { bosToken: '<s>' });
    assert.equal(promptToString(segments), `<|im_start|>system\nsys<|im_end|>\n<|im_start|>user\n<image>\n${question}<|im_end|>\n<|im_start|>assistant\n`);
    assert.deepEqual(
      segments.filter((s) => s.user).map((s) => s.text),
      ['sys', question],
    );
  });

  it('passes bos_token and eos_token to the template', () => {
    const template = "{{ bos_token }}{% for m in messages %}{{ m['content'][0]['text'] }}{{ eos_token }}{% endfor %}";
    const segments = renderChatTemplate(template, chatMessages('hello', { image: false }), { bosToken: '<s>', eosToken: '</s>' });
    assert.deepEqual(segments, [
      { text: '<s>', user: false },
      { text: 'hello', user: true },
      { text: '</s>', user: false },
    ]);
  });

  it('refuses a template that changes message text, and one that does not parse', () => {
    const trimming = "{% for m in messages %}{{ m['content'][0]['text'] | trim }}{% endfor %}";
    assert.throws(() => renderChatTemplate(trimming, chatMessages(' padded ', { image: false })), /transforms message text/);
    assert.throws(() => renderChatTemplate('{% for %}', chatMessages('x')), /does not parse/);
  });

  it("a template written for string content (nanoLLaVA's ChatML) gets the text with the image as a leading <image> line", () => {
    const segments = renderChatTemplate(NANOLLAVA.chatTemplate, chatMessages('What is it?', { system: 'Answer the question.' }));
    assert.equal(
      promptToString(segments),
      '<|im_start|>system\nAnswer the question.<|im_end|>\n<|im_start|>user\n<image>\nWhat is it?<|im_end|>\n<|im_start|>assistant\n',
    );
    assert.deepEqual(
      segments.filter((s) => s.user).map((s) => s.text),
      ['Answer the question.', 'What is it?'],
    );
    // Without a system turn the template adds its own; a text-only question has no <image> line.
    assert.equal(
      promptToString(renderChatTemplate(NANOLLAVA.chatTemplate, chatMessages('Hi', { image: false }))),
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
    );
    // List-content templates are unchanged (llava-hf's interleave template).
    assert.equal(
      promptToString(renderChatTemplate(LLAVA_INTERLEAVE_QWEN_05B.chatTemplate, chatMessages('What is it?'))),
      '<|im_start|>user\n<image>\nWhat is it?<|im_end|>\n<|im_start|>assistant\n',
    );
  });

  describe('readChatTemplate', () => {
    let dir: string;
    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-chat-'));
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('prefers chat_template.json over tokenizer_config.json, and reads the "default" of a named list', () => {
      assert.equal(readChatTemplate(dir), null);
      fs.writeFileSync(
        path.join(dir, 'tokenizer_config.json'),
        JSON.stringify({
          chat_template: [
            { name: 'tool_use', template: 'T' },
            { name: 'default', template: 'D' },
          ],
        }),
      );
      assert.equal(readChatTemplate(dir), 'D');
      fs.writeFileSync(path.join(dir, 'chat_template.json'), JSON.stringify({ chat_template: LLAVA_15_CHAT_TEMPLATE }));
      assert.equal(readChatTemplate(dir), LLAVA_15_CHAT_TEMPLATE);
    });
  });
});
