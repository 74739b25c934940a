import { strict as assert } from 'assert';
import {
  promptToString,
  renderCustomTemplate,
  renderTemplate,
  templateFields,
  templateStopString,
  TEMPLATE_NAMES,
  TemplateName,
} from '../../lib/pipeline/templates';

// Expected strings are the facts recorded from the sources (mmpretrain configs/llava/*.py, haotian-liu/LLaVA
// llava/conversation.py rendered on "<image>\nWhat is shown?").
const V15_META =
  "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions.";
const V1_META =
  'You are LLaVA, a large language and vision assistant trained by UW Madison WAIV Lab.You are able to understand the visual content that the user provides, and assist the user with a variety of tasks using natural language.Follow the instructions carefully and explain your answers in detail.';

const render = (name: TemplateName, question?: string, extra = {}): string => promptToString(renderTemplate(name, { question, ...extra }));

describe('prompt templates', () => {
  describe('mmpretrain (the seed)', () => {
    it('v1 caption wraps the image in <im_start>/<im_end> and says "User:"', () => {
      assert.equal(render('mmpretrain_v1_caption'), `${V1_META} User: <im_start><image><im_end>\nDescribe the image in detail. ASSISTANT:`);
    });
    it('v1.5 caption', () => {
      assert.equal(render('mmpretrain_v1.5_caption'), `${V15_META} User: <image>\nDescribe the image in detail. ASSISTANT:`);
    });
    it('v1.5 VQA puts the question after the image', () => {
      assert.equal(render('mmpretrain_v1.5_vqa', 'What color is the car?'), `${V15_META} User: <image>\nWhat color is the car? ASSISTANT:`);
    });
    it('VQA without a question, or with history, is an error', () => {
      assert.throws(() => render('mmpretrain_v1.5_vqa'), /question must be a string/);
      assert.throws(() => render('mmpretrain_v1.5_vqa', 'q', { history: [{ user: 'a', assistant: 'b' }] }), /single-turn/);
    });
  });

  describe('original LLaVA conversation modes', () => {
    const expected: Record<string, string> = {
      vicuna_v1:
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions. USER: <image>\nWhat is shown? ASSISTANT:",
      llava_v1:
        "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions. USER: <image>\nWhat is shown? ASSISTANT:",
      llava_llama_2:
        '[INST] <<SYS>>\nYou are a helpful language and vision assistant. You are able to understand the visual content that the user provides, and assist the user with a variety of tasks using natural language.\n<</SYS>>\n\n<image>\nWhat is shown? [/INST]',
      mistral_instruct: '[INST] <image>\nWhat is shown? [/INST]',
      chatml_direct: '<|im_start|>system\nAnswer the questions.<|im_end|><|im_start|>user\n<image>\nWhat is shown?<|im_end|><|im_start|>assistant\n',
      plain: '<image>\nWhat is shown?\n',
      llava_v0:
        "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the human's questions.###Human: <image>\nWhat is shown?###Assistant:",
    };
    for (const [name, text] of Object.entries(expected)) {
      it(`${name} renders the conversation.py prompt`, () => {
        assert.equal(render(name as TemplateName, 'What is shown?'), text);
      });
    }

    it('every template name is covered here', () => {
      const covered = [...Object.keys(expected), 'mmpretrain_v1_caption', 'mmpretrain_v1.5_caption', 'mmpretrain_v1.5_vqa'];
      assert.deepEqual([...TEMPLATE_NAMES].sort(), covered.sort());
    });

    it('multi-turn vicuna_v1 ends each answer with </s> and keeps the image in the first turn', () => {
      const text = render('vicuna_v1', 'Q2', { history: [{ user: 'Q1', assistant: 'A1' }] });
      assert.ok(text.endsWith(' USER: <image>\nQ1 ASSISTANT: A1</s>USER: Q2 ASSISTANT:'), text);
    });

    it('multi-turn llava_llama_2 and mistral_instruct follow the LLAMA_2 separator style', () => {
      const llama2 = render('llava_llama_2', 'Q2', { history: [{ user: 'Q1', assistant: 'A1' }] });
      assert.ok(llama2.endsWith('<</SYS>>\n\n<image>\nQ1 [/INST] A1 </s><s>[INST] Q2 [/INST]'), llama2);
      assert.equal(render('mistral_instruct', 'Q2', { history: [{ user: 'Q1', assistant: 'A1' }] }), '[INST] <image>\nQ1 [/INST] A1 </s>[INST] Q2 [/INST]');
    });

    it('multi-turn chatml_direct closes every turn with <|im_end|>', () => {
      assert.equal(
        render('chatml_direct', 'Q2', { history: [{ user: 'Q1', assistant: 'A1' }] }),
        '<|im_start|>system\nAnswer the questions.<|im_end|><|im_start|>user\n<image>\nQ1<|im_end|><|im_start|>assistant\nA1<|im_end|><|im_start|>user\nQ2<|im_end|><|im_start|>assistant\n',
      );
    });

    it('options: no image, <im_start>/<im_end>, another system prompt', () => {
      assert.equal(render('vicuna_v1', 'Hi', { image: false, system: 'Be brief.' }), 'Be brief. USER: Hi ASSISTANT:');
      assert.equal(render('mistral_instruct', 'Hi', { imStartEnd: true }), '[INST] <im_start><image><im_end>\nHi [/INST]');
    });

    it('plain refuses history; a missing question is an error', () => {
      assert.throws(() => render('plain', 'q', { history: [{ user: 'a', assistant: 'b' }] }), /no history/);
      assert.throws(() => render('vicuna_v1'), /question must be a string/);
      assert.throws(() => renderTemplate('nope' as TemplateName, { question: 'q' }), /unknown prompt template "nope"/);
    });

    it('stop strings as llava/serve/cli.py picks them', () => {
      assert.equal(templateStopString('vicuna_v1'), '</s>');
      assert.equal(templateStopString('chatml_direct'), '<|im_end|>');
      assert.equal(templateStopString('llava_v0'), '###');
      assert.equal(templateStopString('mmpretrain_v1.5_vqa'), null);
    });
  });

  describe('user text is marked', () => {
    it('questions and history turns are user segments; template text is not', () => {
      const segments = renderTemplate('vicuna_v1', { question: 'Q2 </s>', history: [{ user: 'Q1 <image>', assistant: 'A1' }] });
      assert.deepEqual(
        segments.filter((s) => s.user).map((s) => s.text),
        ['Q1 <image>', 'A1', 'Q2 </s>'],
      );
      const templateOnly = segments
        .filter((s) => !s.user)
        .map((s) => s.text)
        .join('|');
      assert.equal(templateOnly.split('<image>').length, 2, 'exactly one image marker, from the template');
    });
  });

  describe('custom templates', () => {
    it('fills {{question}} and {{msg.path}} fields as user text, in one pass', () => {
      const segments = renderCustomTemplate('USER: <image>\n{{question}} (room {{ msg.topic }}) ASSISTANT:', {
        question: 'What is {{msg.topic}}?',
        'msg.topic': 'kitchen</s>',
      });
      assert.equal(promptToString(segments), 'USER: <image>\nWhat is {{msg.topic}}? (room kitchen</s>) ASSISTANT:');
      assert.deepEqual(
        segments.filter((s) => s.user).map((s) => s.text),
        ['What is {{msg.topic}}?', 'kitchen</s>'],
      );
    });
    it('lists fields and refuses a field without a value', () => {
      assert.deepEqual(templateFields('{{question}} {{msg.a.b}} {{question}}'), ['question', 'msg.a.b']);
      assert.throws(() => renderCustomTemplate('{{question}} {{msg.x}}', { question: 'q' }), /\{\{msg\.x\}\} but no value/);
    });
  });
});
