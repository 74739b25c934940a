// The Node-RED editor in headless Chromium with this package loaded: the palette shows the LLaVA category with our
// labels and icons, the example flows import, every edit dialog opens with its typed inputs and model selector,
// validation flags a node without a model, and the editor logs no errors.
import * as assert from 'assert';
import type { Browser } from 'playwright-core';
import * as fs from 'fs';
import * as path from 'path';
import { launchBrowser, openEditor, EditorPage } from '../support/browser';
import { requireSystemPackages } from '../support/system-packages';
import { RunningNodeRed, nodeRedDir, repoRoot, startNodeRed } from '../support/node-red';

const nodeRedMajor = Number(JSON.parse(fs.readFileSync(path.join(nodeRedDir, 'package.json'), 'utf8')).version.split('.')[0]);

const PALETTE: Record<string, string> = {
  'llava-image-load': 'image load',
  'llava-clip-encode': 'clip encode',
  'llava-project': 'project',
  'llava-prompt-template': 'prompt template',
  'llava-generate': 'llm generate',
};
/** TypedInput fields each edit dialog must render. */
const TYPED_INPUTS: Record<string, string[]> = {
  'llava-image-load': ['input', 'output'],
  'llava-clip-encode': ['input', 'output'],
  'llava-project': ['input', 'output'],
  'llava-prompt-template': ['question', 'output'],
  'llava-generate': ['prompt', 'embeds', 'output'],
};

function example(name: string): any[] {
  return JSON.parse(fs.readFileSync(path.join(repoRoot, 'examples', `${name}.json`), 'utf8'));
}

describe('editor: the LLaVA nodes in the Node-RED editor (Chromium)', function () {
  let nr: RunningNodeRed;
  let browser: Browser;
  let editor: EditorPage;

  before(async function () {
    requireSystemPackages(this, 'chromium');
    nr = await startNodeRed();
    browser = await launchBrowser();
    editor = await openEditor(browser, nr.url, { paletteTypes: Object.keys(PALETTE) });
  });
  after(async function () {
    await browser?.close();
    await nr?.stop();
  });

  it('shows the five palette nodes in category LLaVA with their labels and loaded icons', async () => {
    const palette = await editor.page.evaluate((types: string[]) => {
      const $ = (globalThis as any).$;
      return types.map((type) => {
        const el = $(`.red-ui-palette-node[data-palette-type='${type}']`);
        const img = el.find('.red-ui-palette-icon').css('background-image') || '';
        return { type, found: el.length, label: el.find('.red-ui-palette-label').text().replace(/\s+/g, ' ').trim(), category: el.data('category'), img };
      });
    }, Object.keys(PALETTE));
    for (const p of palette) {
      assert.strictEqual(p.found, 1, p.type);
      assert.strictEqual(p.label, PALETTE[p.type]);
      assert.strictEqual(p.category, 'LLaVA', p.type);
      assert.match(p.img, new RegExp(`icons/node-red-contrib-llava/${p.type}\\.svg`), p.type);
    }
  });

  it('imports every example, and each LLaVA edit dialog opens with its typed inputs and model selector', async () => {
    for (const name of ['caption', 'vqa', 'mqtt-camera']) {
      const imported = await editor.page.evaluate((flow: any[]) => {
        const RED = (globalThis as any).RED;
        RED.view.importNodes(flow, { generateIds: true, addFlow: true });
        const ids: Record<string, string> = {};
        RED.nodes.eachNode((n: any) => {
          if (n.type.startsWith('llava-') && n.z === RED.workspaces.active()) ids[n.type] = n.id;
        });
        return ids;
      }, example(name));
      for (const [type, id] of Object.entries(imported)) {
        await editor.page.evaluate((nodeId: string) => {
          const RED = (globalThis as any).RED;
          RED.editor.edit(RED.nodes.node(nodeId));
        }, id);
        await editor.page.waitForSelector('#dialog-form .red-ui-typedInput-container', { state: 'visible' });
        const dialog = await editor.page.evaluate(
          ([fields, nodeId]: [string[], string]) => {
            const $ = (globalThis as any).$;
            const node = (globalThis as any).RED.nodes.node(nodeId);
            return {
              typed: fields.map((f) => $(`#node-input-${f}`).typedInput('type')),
              saved: fields.map((f) => node[`${f}Type`]),
              model: $('#node-input-model').length,
              perTopic: $('#node-input-questions-container .llava-topic')
                .map((_: number, el: any) => $(el).val())
                .get(),
            };
          },
          [TYPED_INPUTS[type], id] as [string[], string],
        );
        assert.deepStrictEqual(dialog.typed, dialog.saved, `${name}: ${type} typed inputs show the flow's types`);
        assert.strictEqual(dialog.model, 1, `${name}: ${type} model selector`);
        const perTopic = (example(name).find((n) => n.type === type).questions ?? []).map((r: { topic: string }) => r.topic);
        assert.deepStrictEqual(dialog.perTopic, perTopic, `${name}: ${type} per-topic questions listed`);
        if (perTopic.length > 0) {
          // A row added in the dialog is saved after the example's rows.
          await editor.page.evaluate(() => {
            const $ = (globalThis as any).$;
            $('#node-input-questions-container').editableList('addItem', { topic: 'camera/gate/snapshot', question: 'Is the gate open?' });
            $('#node-dialog-ok').trigger('click');
          });
          await editor.page.waitForSelector('#dialog-form', { state: 'detached' });
          const questions = await editor.page.evaluate((nodeId: string) => (globalThis as any).RED.nodes.node(nodeId).questions, id);
          const shipped = example(name).find((n) => n.type === type).questions;
          assert.deepStrictEqual(questions, [...shipped, { topic: 'camera/gate/snapshot', question: 'Is the gate open?' }], `${name}: ${type} saves the table`);
          continue;
        }
        await editor.page.evaluate(() => (globalThis as any).RED.tray.close());
        await editor.page.waitForSelector('#dialog-form', { state: 'detached' });
      }
      assert.deepStrictEqual(Object.keys(imported).sort(), Object.keys(PALETTE).sort(), name);
      const recovered = await editor.page.evaluate(() => {
        let found = false;
        (globalThis as any).RED.nodes.eachWorkspace((w: any) => {
          if (w.label === 'Recovered Nodes') found = true;
        });
        return found;
      });
      assert.strictEqual(recovered, false, `${name}: every node has a flow id, so none land in "Recovered Nodes"`);
    }
  });

  it('shared editor rows: the queued nodes offer the same choices, old flows show the defaults, a dropped output is added', async () => {
    const QUEUED: Record<string, { defaults: [string, string, string]; outputs: number }> = {
      'llava-image-load': { defaults: ['fifo', '100', 'status'], outputs: 1 },
      'llava-clip-encode': { defaults: ['fifo', '10', 'status'], outputs: 1 },
      'llava-project': { defaults: ['fifo', '10', 'status'], outputs: 1 },
      'llava-generate': { defaults: ['latest', '1', 'status'], outputs: 2 },
    };
    for (const [type, expected] of Object.entries(QUEUED)) {
      // A node as a flow saved before the queue fields has it: none of them.
      await editor.page.evaluate((t: string) => {
        const RED = (globalThis as any).RED;
        const id = RED.nodes.id();
        RED.view.importNodes([{ id, type: t, z: RED.workspaces.active(), x: 200, y: 200, wires: [] }]);
        const n = RED.nodes.node(id);
        for (const f of ['queuePolicy', 'queueLength', 'dropped']) delete n[f];
        RED.editor.edit(n);
        (globalThis as any).__edited = n;
      }, type);
      await editor.page.waitForSelector('#dialog-form #node-input-queuePolicy', { state: 'attached' });
      const dialog = await editor.page.evaluate(() => {
        const $ = (globalThis as any).$;
        const values = (sel: string) =>
          $(sel)
            .find('option')
            .map((_: number, o: any) => o.value)
            .get();
        return {
          policies: values('#node-input-queuePolicy'),
          drops: values('#node-input-dropped'),
          shown: ['queuePolicy', 'queueLength', 'dropped'].map((f) => String($(`#node-input-${f}`).val())),
          waitLimit: String($('#node-input-maxWait').val()),
          outputText: $('#node-input-dropped option[value="output"]').text(),
          name: $('#node-input-name').length,
          model: $('#node-input-model').length,
        };
      });
      assert.deepStrictEqual(dialog.policies, ['latest', 'fifo', 'drop-new'], type);
      assert.deepStrictEqual(dialog.drops, ['status', 'output', 'error'], type);
      assert.deepStrictEqual(dialog.shown, expected.defaults, `${type}: a flow without the fields shows the runtime's defaults`);
      assert.strictEqual(dialog.waitLimit, '', `${type}: no waiting limit unless set`);
      assert.strictEqual(dialog.outputText, `send to a ${['', 'second', 'third'][expected.outputs]} output`, type);
      assert.deepStrictEqual([dialog.name, dialog.model], [1, 1], `${type}: name and model rows`);
      // Choosing the dropped-message output and saving adds one output after the node's own.
      await editor.page.evaluate(() => {
        (globalThis as any).$('#node-input-dropped').val('output').trigger('change');
        (globalThis as any).$('#node-input-maxWait').val('2.5');
        (globalThis as any).$('#node-dialog-ok').trigger('click');
      });
      await editor.page.waitForSelector('#dialog-form', { state: 'detached' });
      const saved = await editor.page.evaluate(() => {
        const n = (globalThis as any).__edited;
        return { outputs: Number(n.outputs), dropped: n.dropped, maxWait: n.maxWait };
      });
      assert.deepStrictEqual(saved, { outputs: expected.outputs + 1, dropped: 'output', maxWait: '2.5' }, type);
    }
  });

  it('marks a node without a model as invalid and one with a model as valid', async () => {
    const valid = await editor.page.evaluate(() => {
      const RED = (globalThis as any).RED;
      const ws = RED.workspaces.active();
      const make = (model: string) => {
        const def = RED.nodes.getType('llava-generate');
        const n: any = { id: RED.nodes.id(), type: 'llava-generate', z: ws, _def: def, x: 100, y: 100, wires: [[], []] };
        for (const [k, v] of Object.entries<any>(def.defaults)) n[k] = v.value;
        n.model = model;
        RED.nodes.add(n);
        RED.editor.validateNode(n);
        return n.valid;
      };
      let modelId = '';
      RED.nodes.eachConfig((c: any) => {
        if (c.type === 'llava-model') {
          c.modelDir = '/models/llava';
          RED.editor.validateNode(c);
          modelId = c.id;
        }
      });
      return { without: make(''), with: make(modelId) };
    });
    assert.deepStrictEqual(valid, { without: false, with: true });
  });

  it('edit dialog hint text stays readable in the light and the dark colour scheme (dark: Node-RED 5)', async () => {
    for (const scheme of ['light', 'dark'] as const) {
      const { page, errors } = await openEditor(browser, nr.url, { paletteTypes: ['llava-generate'], colorScheme: scheme });
      const seen = await page.evaluate((flow: any[]) => {
        const g = globalThis as any;
        g.RED.view.importNodes(
          flow.filter((n) => n.type === 'llava-generate' || n.type === 'llava-model'),
          { generateIds: true, addFlow: true },
        );
        let node: any;
        g.RED.nodes.eachNode((n: any) => {
          if (n.type === 'llava-generate') node = n;
        });
        g.RED.editor.edit(node);
        return g.document.documentElement.classList.contains('nr-theme-dark');
      }, example('caption'));
      await page.waitForSelector('#dialog-form .llava-hint', { state: 'visible' });
      const colours = await page.evaluate(() => {
        const g = globalThis as any;
        const hint = g.document.querySelector('#dialog-form .llava-hint');
        let bg = 'rgba(0, 0, 0, 0)';
        for (let el = hint; el && /rgba\(0, 0, 0, 0\)|transparent/.test(bg); el = el.parentElement) bg = g.getComputedStyle(el).backgroundColor;
        return { fg: g.getComputedStyle(hint).color as string, bg };
      });
      const ratio = contrast(colours.fg, colours.bg);
      assert.ok(ratio >= 3, `${scheme}: hint ${colours.fg} on ${colours.bg} has contrast ${ratio.toFixed(2)}`);
      if (scheme === 'dark' && nodeRedMajor >= 5) assert.strictEqual(seen, true, 'Node-RED 5 follows the dark colour scheme');
      assert.deepStrictEqual(errors, []);
      await page.context().close();
    }
  });

  it('logged no editor errors', () => {
    assert.deepStrictEqual(editor.errors, []);
  });
});

/** WCAG contrast ratio of two computed CSS colours ("rgb(r, g, b)"). */
function contrast(a: string, b: string): number {
  const lum = (css: string) => {
    const [r, g, bl] = (css.match(/[\d.]+/g) ?? []).slice(0, 3).map((v) => {
      const c = Number(v) / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * bl;
  };
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}
