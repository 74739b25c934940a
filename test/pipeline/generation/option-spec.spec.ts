// One generation-option spec drives every check: the resolver, llm generate's editor fields and msg.llava.options,
// and the CLI's flags and usage give the same rule and the same words for each option.
import { strict as assert } from 'assert';
import { usage } from '../../../lib/cli/generate';
import { GENERATION_OPTION_NAMES, GENERATION_OPTION_SPECS, requirement } from '../../../lib/pipeline/generation/option-spec';
import { resolveGenerationOptions } from '../../../lib/pipeline/generation/options';
import { generationOptionsFromConfig, generationOptionsFromMessage } from '../../../nodes/shared/generation-options';

/** A value just outside the option's range (or not an integer), and one inside it. */
function outsideAndInside(name: (typeof GENERATION_OPTION_NAMES)[number]): [number, number] | null {
  const spec = GENERATION_OPTION_SPECS[name];
  if (spec.kind !== 'integer' && spec.kind !== 'number') return null;
  if (spec.max !== undefined) return [spec.max + 0.5, spec.max];
  if (spec.min !== undefined) return [spec.above ? spec.min : spec.min - 1, spec.above ? spec.min + 0.5 : spec.min];
  return spec.kind === 'integer' ? [1.5, 2] : null;
}

describe('generation option spec', () => {
  it('the resolver, the editor fields and msg.llava.options accept and refuse the same values, in the same words', () => {
    let checked = 0;
    for (const name of GENERATION_OPTION_NAMES) {
      const values = outsideAndInside(name);
      if (!values) continue;
      const [bad, good] = values;
      const rule = `must be ${requirement(GENERATION_OPTION_SPECS[name])}, got ${bad}`;
      // maxNewTokens 0 is a budget the resolver accepts (the context may be full); a request starts at 1.
      if (name !== 'maxNewTokens') {
        assert.throws(
          () => resolveGenerationOptions({ maxNewTokens: 1, [name]: bad }, 100),
          new RegExp(`^Error: Invalid generation options: ${name} ${escape(rule)}$`),
          name,
        );
      }
      assert.throws(() => generationOptionsFromMessage({ [name]: bad }), new RegExp(`^Error: msg\\.llava\\.options\\.${name} ${escape(rule)}$`), name);
      assert.throws(() => generationOptionsFromConfig({ [name]: String(bad) }), new RegExp(`^Error: editor field ${name} ${escape(rule)}$`), name);
      assert.deepEqual(generationOptionsFromMessage({ [name]: good }), { [name]: good });
      assert.deepEqual(generationOptionsFromConfig({ [name]: String(good) }), { [name]: good });
      resolveGenerationOptions({ maxNewTokens: 1, [name]: good }, 100);
      checked++;
    }
    assert.ok(checked >= 9, `${checked} number options checked`);
    assert.throws(() => generationOptionsFromMessage({ maxNewTokens: 0 }), /maxNewTokens must be an integer >= 1, got 0/);
    assert.equal(resolveGenerationOptions({ maxNewTokens: 0 }, 100).maxNewTokens, 0);
  });

  it('llava generate offers a flag for every option but doSample (--greedy or a sampling flag), in its usage', () => {
    for (const name of GENERATION_OPTION_NAMES) {
      const { flag, sampling } = GENERATION_OPTION_SPECS[name];
      if (name === 'doSample') {
        assert.equal(flag, undefined);
        continue;
      }
      assert.ok(usage.includes(`--${flag}`), `usage shows --${flag}`);
      if (sampling) assert.match(usage, new RegExp(`\\[--greedy \\|[^\\]]*--${flag}`), `--${flag} is in the sampling group`);
    }
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
