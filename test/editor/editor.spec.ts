// The Node-RED editor in headless Chromium with this package loaded: the palette shows the LLaVA category with our
// labels and icons, the example flows import, every edit dialog opens with its typed inputs and model selector,
// validation flags a node without a model, and the editor logs no errors.
import * as assert from 'assert';
import type { Browser } from 'playwright-core';
import * as fs from 'fs';
import * as path from 'path';
import { launchBrowser, openEditor, EditorPage } from '../support/browser';
import { RunningNodeRed, repoRoot, startNodeRed } from '../support/node-red';

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
        const dialog = await editor.page.evaluate((fields: string[]) => {
          const $ = (globalThis as any).$;
          return {
            typed: fields.map((f) => $(`#node-input-${f}`).typedInput('type')),
            model: $('#node-input-model').length,
          };
        }, TYPED_INPUTS[type]);
        assert.deepStrictEqual(dialog.typed, TYPED_INPUTS[type].map(() => 'msg'), `${name}: ${type} typed inputs`);
        assert.strictEqual(dialog.model, 1, `${name}: ${type} model selector`);
        await editor.page.evaluate(() => (globalThis as any).RED.tray.close());
        await editor.page.waitForSelector('#dialog-form', { state: 'detached' });
      }
      assert.deepStrictEqual(Object.keys(imported).sort(), Object.keys(PALETTE).sort(), name);
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

  it('logged no editor errors', () => {
    assert.deepStrictEqual(editor.errors, []);
  });
});
