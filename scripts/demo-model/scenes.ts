// Synthetic scenes for the demo model: one to three coloured shapes on a plain background, each with the one
// caption that describes it. The same generator makes the training set (scripts/demo-model/export-data.ts), the
// held-out test scenes (test/demo-model) and the picture `npm start` captions, so a scene is a pure function of its
// seed.
import sharp from 'sharp';
import { seededRandom as rng } from '../../lib/pipeline/generation/rng';

export const COLOURS = { red: '#d62828', green: '#2a9d3a', blue: '#1d4ed8', yellow: '#f4c20d' } as const;
export const SHAPES = ['circle', 'square', 'triangle'] as const;
export type Colour = keyof typeof COLOURS;
export type Shape = (typeof SHAPES)[number];

/** Light backgrounds, so every shape colour stands out. */
const BACKGROUNDS = ['#ffffff', '#eeeeee', '#f3ead8', '#e3eef7'];
const NUMBER_WORDS = ['', 'one', 'two', 'three'];

export interface SceneObject {
  colour: Colour;
  shape: Shape;
  /** Centre and half-size in canvas pixels. */
  x: number;
  y: number;
  r: number;
}

export interface Scene {
  seed: number;
  background: string;
  objects: SceneObject[];
  caption: string;
}

/** Side of the rendered square picture in pixels (the model sees it resized to its own input size). */
export const SCENE_SIZE = 192;

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)];
}

/** Places `count` objects of half-size 18–30 px that do not touch, or null when the random draw did not fit. */
function place(random: () => number, count: number, sideBySide: boolean): Array<Pick<SceneObject, 'x' | 'y' | 'r'>> | null {
  const out: Array<Pick<SceneObject, 'x' | 'y' | 'r'>> = [];
  for (let i = 0; i < count; i++) {
    const r = 18 + random() * 12;
    // Two different objects stand clearly one left, one right of the middle, so "on the left" is never ambiguous.
    const [xMin, xMax] = sideBySide ? (i === 0 ? [r + 4, SCENE_SIZE / 2 - r - 8] : [SCENE_SIZE / 2 + r + 8, SCENE_SIZE - r - 4]) : [r + 4, SCENE_SIZE - r - 4];
    const x = xMin + random() * (xMax - xMin);
    const y = r + 4 + random() * (SCENE_SIZE - 2 * r - 8);
    if (out.some((o) => Math.hypot(o.x - x, o.y - y) < o.r + r + 10)) return null;
    out.push({ x, y, r });
  }
  return out;
}

function captionFor(objects: SceneObject[], sameKind: boolean): string {
  const [first, second] = objects;
  if (sameKind && objects.length === 1) return `a ${first.colour} ${first.shape}`;
  if (sameKind) return `${NUMBER_WORDS[objects.length]} ${first.colour} ${first.shape}s`;
  const [left, right] = first.x < second.x ? [first, second] : [second, first];
  return `a ${left.colour} ${left.shape} on the left and a ${right.colour} ${right.shape} on the right`;
}

/**
 * The scene for a seed: one shape, two or three of the same colour and shape, or two different shapes side by side,
 * each kind equally likely.
 */
export function scene(seed: number): Scene {
  const random = rng(seed);
  const background = pick(random, BACKGROUNDS);
  const kind = Math.floor(random() * 4); // 0: one, 1: two alike, 2: three alike, 3: two different
  const count = kind === 0 ? 1 : kind === 3 ? 2 : kind + 1;
  const first = { colour: pick(random, Object.keys(COLOURS) as Colour[]), shape: pick(random, SHAPES) };
  let second = first;
  while (kind === 3 && second.colour === first.colour && second.shape === first.shape) {
    second = { colour: pick(random, Object.keys(COLOURS) as Colour[]), shape: pick(random, SHAPES) };
  }
  let spots = place(random, count, kind === 3);
  while (spots === null) spots = place(random, count, kind === 3);
  const objects = spots.map((s, i) => ({ ...(i === 1 && kind === 3 ? second : first), ...s }));
  return { seed, background, objects, caption: captionFor(objects, kind !== 3) };
}

function shapeSvg(o: SceneObject): string {
  const fill = COLOURS[o.colour];
  const f = (v: number) => v.toFixed(1);
  switch (o.shape) {
    case 'circle':
      return `<circle cx="${f(o.x)}" cy="${f(o.y)}" r="${f(o.r)}" fill="${fill}"/>`;
    case 'square':
      return `<rect x="${f(o.x - o.r)}" y="${f(o.y - o.r)}" width="${f(2 * o.r)}" height="${f(2 * o.r)}" fill="${fill}"/>`;
    case 'triangle':
      return `<polygon points="${f(o.x)},${f(o.y - o.r)} ${f(o.x + o.r)},${f(o.y + o.r)} ${f(o.x - o.r)},${f(o.y + o.r)}" fill="${fill}"/>`;
  }
}

export function sceneSvg(s: Scene): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${SCENE_SIZE}" height="${SCENE_SIZE}">` +
    `<rect width="${SCENE_SIZE}" height="${SCENE_SIZE}" fill="${s.background}"/>${s.objects.map(shapeSvg).join('')}</svg>`;
}

/** The scene as a PNG file's bytes. */
export function renderScene(s: Scene): Promise<Buffer> {
  return sharp(Buffer.from(sceneSvg(s))).png().toBuffer();
}

/** Seeds below this are for training; the test and the demo picture use seeds at or above it. */
export const HELD_OUT_SEED_START = 1_000_000;
/** The picture `npm start` deploys the caption example with. */
export const DEMO_SCENE_SEED = HELD_OUT_SEED_START + 7;
