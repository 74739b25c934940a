// Editor fields and msg.llava.options → generation options; editor queue fields → handleInput options.
import * as assert from 'assert';
import { GENERATION_OPTION_NAMES } from '../../../lib/pipeline/generation/option-spec';
import { generationOptionsFromConfig, generationOptionsFromMessage, mergeGenerationOptions } from '../../../nodes/shared/generation-options';
import { admissionFromConfig } from '../../../nodes/shared/input';

describe('nodes/shared generation options', () => {
  it('editor: empty fields stay unset (preset value), text numbers parse, stop strings are one per line', () => {
    const opts = generationOptionsFromConfig({
      maxNewTokens: '50',
      numBeams: 3,
      lengthPenalty: '-1',
      temperature: '',
      topK: '  ',
      doSample: false,
      ignoreEos: true,
      stopStrings: '</s>\n###\n',
    });
    assert.deepStrictEqual(opts, { maxNewTokens: 50, numBeams: 3, lengthPenalty: -1, ignoreEos: true, stopStrings: ['</s>', '###'] });
  });

  it('editor: a bad number names the field', () => {
    assert.throws(() => generationOptionsFromConfig({ maxNewTokens: 'many' }), /editor field maxNewTokens must be a finite number/);
    assert.throws(() => generationOptionsFromConfig({ numBeams: '1.5' }), /numBeams must be an integer >= 1, got 1.5/);
    assert.throws(() => generationOptionsFromConfig({ maxNewTokens: '0' }), /maxNewTokens must be an integer >= 1, got 0/);
  });

  it('message: accepts every documented option, and later layers win', () => {
    const msgOpts = generationOptionsFromMessage({ temperature: 0.2, doSample: true, stopStrings: ['.'], seed: 7 });
    const merged = mergeGenerationOptions({ maxNewTokens: 50, temperature: 1 }, { temperature: 0.7 }, msgOpts);
    assert.deepStrictEqual(merged, { maxNewTokens: 50, temperature: 0.2, doSample: true, stopStrings: ['.'], seed: 7 });
    assert.deepStrictEqual([...GENERATION_OPTION_NAMES].sort(), [
      'doSample',
      'ignoreEos',
      'lengthPenalty',
      'maxNewTokens',
      'maxTime',
      'minNewTokens',
      'minP',
      'numBeams',
      'repetitionPenalty',
      'seed',
      'stopStrings',
      'temperature',
      'topK',
      'topP',
    ]);
  });

  it('message: unknown names and wrong types are errors that name them', () => {
    assert.throws(() => generationOptionsFromMessage({ max_new_tokens: 5 }), /msg\.llava\.options\.max_new_tokens is not a generation option/);
    assert.throws(() => generationOptionsFromMessage({ temperature: '0.2' }), /options\.temperature must be a number, got string/);
    assert.throws(() => generationOptionsFromMessage({ doSample: 1 }), /doSample must be true or false/);
    assert.throws(() => generationOptionsFromMessage({ stopStrings: '</s>' }), /stopStrings must be an array/);
    assert.throws(() => generationOptionsFromMessage('fast'), /must be an object, got string/);
    assert.deepStrictEqual(generationOptionsFromMessage(undefined), {});
  });
});

describe('nodes/shared admissionFromConfig', () => {
  it('maps the editor fields, the dropped output being the last one', () => {
    assert.deepStrictEqual(admissionFromConfig({ queuePolicy: 'fifo', queueLength: '4', dropped: 'output' }, 3), {
      queue: { policy: 'fifo', maxQueued: 4 },
      dropped: { mode: 'output', output: 2, outputs: 3 },
    });
    assert.deepStrictEqual(admissionFromConfig({}, 2), { queue: { policy: 'latest', maxQueued: 1 }, dropped: { mode: 'status' } });
    // The waiting limit is in seconds in the editor; empty is none.
    assert.deepStrictEqual(admissionFromConfig({ maxWait: '2.5' }, 2).queue, { policy: 'latest', maxQueued: 1, maxWaitMs: 2500 });
    assert.deepStrictEqual(admissionFromConfig({ maxWait: '' }, 2).queue, { policy: 'latest', maxQueued: 1 });
  });

  it('refuses unknown values', () => {
    assert.throws(() => admissionFromConfig({ queuePolicy: 'newest' }, 2), /queue policy must be one of latest, fifo, drop-new/);
    assert.throws(() => admissionFromConfig({ dropped: 'log' }, 2), /dropped must be status, output or error/);
    assert.throws(() => admissionFromConfig({ maxWait: 'soon' }, 2), /the waiting limit must be a number of seconds > 0 \(at most 2147483\), got "soon"/);
    assert.throws(() => admissionFromConfig({ maxWait: '0' }, 2), /the waiting limit must be a number of seconds > 0/);
  });
});
