// Every example flow and the `npm start` demo flow, as Node-RED's editor draws them at its default zoom: no node
// covers another, and none starts off the canvas (left of or above the origin). Boxes are the editor's own node
// sizes (n.w × n.h once drawn), so a longer label that widens a node is caught too.
import * as assert from 'assert';
import type { Browser } from 'playwright-core';
import * as fs from 'fs';
import * as path from 'path';
import { launchBrowser, openEditor, EditorPage } from '../support/browser';
import { RunningNodeRed, repoRoot, startNodeRed } from '../support/node-red';

const start = require(path.join(repoRoot, 'scripts', 'start.js'));
/** Space left between two nodes' boxes, in canvas pixels. */
const GAP = 4;

interface Box {
  label: string;
  x: number;
  y: number;
  w: number;
  h: number;
}

function flows(): Array<[string, any[]]> {
  const dir = path.join(repoRoot, 'examples');
  const examples = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f): [string, any[]] => [`examples/${f}`, JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'))]);
  return [...examples, ['npm start demo', start.demoFlow('/models/demo', '/images/demo.png')]];
}

/** The pairs of boxes that overlap (closer than GAP), and the boxes that start off the canvas. */
export function layoutProblems(boxes: Box[]): string[] {
  const problems: string[] = [];
  for (const b of boxes) {
    if (b.x - b.w / 2 < 0 || b.y - b.h / 2 < 0) problems.push(`${b.label} starts off the canvas (left ${b.x - b.w / 2}, top ${b.y - b.h / 2})`);
  }
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const [a, b] = [boxes[i], boxes[j]];
      const apartX = Math.abs(a.x - b.x) >= (a.w + b.w) / 2 + GAP;
      const apartY = Math.abs(a.y - b.y) >= (a.h + b.h) / 2 + GAP;
      if (!apartX && !apartY) problems.push(`${a.label} overlaps ${b.label}`);
    }
  }
  return problems;
}

describe('editor: example layouts (Chromium)', function () {
  let nr: RunningNodeRed;
  let browser: Browser;
  let editor: EditorPage;

  before(async function () {
    nr = await startNodeRed();
    browser = await launchBrowser();
    editor = await openEditor(browser, nr.url, { paletteTypes: ['llava-generate'] });
  });
  after(async function () {
    await browser?.close();
    await nr?.stop();
  });

  it('finds overlaps and off-canvas nodes (the check itself)', () => {
    const node = (label: string, x: number, y: number): Box => ({ label, x, y, w: 120, h: 30 });
    assert.deepStrictEqual(layoutProblems([node('a', 100, 100), node('b', 300, 100), node('c', 100, 140)]), []);
    assert.deepStrictEqual(layoutProblems([node('a', 100, 100), node('b', 180, 110)]), ['a overlaps b']);
    assert.deepStrictEqual(layoutProblems([node('a', 40, 100)]), ['a starts off the canvas (left -20, top 85)']);
  });

  for (const [name, flow] of flows()) {
    it(`${name}: no node overlaps another or starts off the canvas`, async () => {
      // The editor gives each node's drawn size; positions are the flow's own (an import would move them, and
      // `npm start` deploys the demo flow as written).
      const sizes: Record<string, [number, number]> = await editor.page.evaluate(async (nodes: any[]) => {
        const RED = (globalThis as any).RED;
        RED.nodes.clear();
        const hasTab = nodes.some((n) => n.type === 'tab');
        RED.view.importNodes(nodes, { generateIds: false, addFlow: !hasTab });
        if (hasTab) RED.workspaces.show(RED.nodes.getWorkspaceOrder()[0]);
        RED.view.redraw(true);
        await new Promise((r) => setTimeout(r, 300));
        const out: Record<string, [number, number]> = {};
        RED.nodes.eachNode((n: any) => {
          if (n.x !== undefined) out[n.id] = [n.w, n.h];
        });
        return out;
      }, flow);
      const boxes: Box[] = flow
        .filter((n) => n.x !== undefined && n.type !== 'tab')
        .map((n) => ({
          label: `${n.type} "${n.name || n.id}"`,
          x: n.x,
          y: n.y,
          w: sizes[n.id]?.[0] ?? 0,
          h: sizes[n.id]?.[1] ?? 0,
        }));
      assert.ok(boxes.length >= 3 && boxes.every((b) => b.w > 0 && b.h > 0), `drawn: ${JSON.stringify(boxes)}`);
      const problems = layoutProblems(boxes);
      assert.deepStrictEqual(problems, [], `${name}:\n${problems.join('\n')}`);
    });
  }
});
