// The source's import graph (type-only imports included) has no cycles, file by file and between lib/'s layers
// (lib/model, lib/onnx, lib/pipeline, …): data flows one way, so a module never needs one that needs it back.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as ts from 'typescript';

const repoRoot = path.resolve(__dirname, '..', '..', '..');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(path.join(repoRoot, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.posix.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(rel);
    return rel.endsWith('.ts') && !rel.endsWith('.d.ts') ? [rel] : [];
  });
}

/** file → the files it imports (relative specifiers only), repository-relative with / separators. */
function importGraph(dirs: string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of dirs.flatMap(sourceFiles)) {
    const { importedFiles } = ts.preProcessFile(fs.readFileSync(path.join(repoRoot, file), 'utf8'), true, false);
    const targets = importedFiles
      .map((i) => i.fileName)
      .filter((spec) => spec.startsWith('.'))
      .map((spec) => {
        const base = path.posix.normalize(path.posix.join(path.posix.dirname(file), spec));
        const found = [`${base}.ts`, `${base}/index.ts`].find((c) => fs.existsSync(path.join(repoRoot, c)));
        assert.ok(found, `${file} imports ${spec}, which resolves to no .ts file`);
        return found;
      });
    graph.set(file, [...new Set(targets)]);
  }
  return graph;
}

/** The cycles of a directed graph: its strongly connected components of two or more nodes (or a self-loop). */
function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || graph.get(v)?.includes(v)) found.push(component.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

/** A file's layer: its folder under lib/ (lib/pipeline/generation/x.ts → lib/pipeline), or lib/ itself. */
function layer(file: string): string {
  const parts = file.split('/');
  return parts.length > 2 ? parts.slice(0, 2).join('/') : parts[0];
}

describe('package: import graph', () => {
  const graph = importGraph(['lib', 'nodes']);

  it('has no import cycle between files of lib/ and nodes/', () => {
    assert.ok(graph.size > 100, `only ${graph.size} files found`);
    const describe = (c: string[]) =>
      c
        .map(
          (f) =>
            `${f} → ${graph
              .get(f)!
              .filter((t) => c.includes(t))
              .join(', ')}`,
        )
        .join('\n  ');
    assert.deepStrictEqual(cycles(graph).map(describe), []);
  });

  it("has no cycle between lib/'s folders (model, onnx, pipeline, runtime, …)", () => {
    const layers = new Map<string, string[]>();
    const edges: string[] = [];
    for (const [file, targets] of graph) {
      if (!file.startsWith('lib/')) continue;
      for (const t of targets.filter((t) => layer(t) !== layer(file))) {
        layers.set(layer(file), [...(layers.get(layer(file)) ?? []), layer(t)]);
        edges.push(`${file} → ${t}`);
      }
    }
    assert.ok(layers.get('lib/pipeline')?.includes('lib/model'), 'the layer graph was not built');
    const describe = (c: string[]) => edges.filter((e) => c.includes(layer(e.split(' → ')[0])) && c.includes(layer(e.split(' → ')[1]))).join('\n  ');
    assert.deepStrictEqual(cycles(layers).map(describe), []);
  });
});
