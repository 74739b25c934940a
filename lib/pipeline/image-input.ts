// Turns what Node-RED users send as an image (camera frames over MQTT, ESP32-CAM posts, Home Assistant
// snapshots, files on disk) into the encoded image bytes. Decoding happens later, in image-preprocess.

import { promises as fs } from 'fs';
import * as path from 'path';

export interface ImageInputOptions {
  /**
   * Absolute folders that file paths may point into. Empty (the default) means file paths are refused, so a
   * message from the network cannot make the flow read arbitrary files.
   */
  allowedRoots?: readonly string[];
  /** Object fields searched, in order, for the image when the input is an object. */
  fields?: readonly string[];
}

export const DEFAULT_IMAGE_FIELDS: readonly string[] = ['image', 'data', 'payload'];

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | 'avif' | 'heif';

/** Recognises an encoded image from its first bytes; null when the signature is unknown. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | null {
  const ascii = (from: number, to: number) => String.fromCharCode(...bytes.subarray(from, to));
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 8 && ascii(0, 8) === '\x89PNG\r\n\x1a\n') return 'png';
  if (bytes.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  if (bytes.length >= 6 && (ascii(0, 6) === 'GIF87a' || ascii(0, 6) === 'GIF89a')) return 'gif';
  if (bytes.length >= 4 && (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*')) return 'tiff';
  if (bytes.length >= 12 && ascii(4, 8) === 'ftyp') {
    const brand = ascii(8, 12);
    return brand === 'avif' || brand === 'avis' ? 'avif' : 'heif';
  }
  return null;
}

const BASE64 = /^[A-Za-z0-9+/\-_]+={0,2}$/;
// 16 base64 characters decode to 12 bytes: enough for every signature above.
const SNIFF_CHARS = 16;

function decodeBase64(text: string, what: string): Buffer {
  const compact = text.replace(/\s+/g, '');
  if (compact.length === 0) throw new Error(`${what} is empty`);
  if (!BASE64.test(compact)) throw new Error(`${what} is not valid base64`);
  return Buffer.from(compact, compact.includes('-') || compact.includes('_') ? 'base64url' : 'base64');
}

function fromDataUri(uri: string): Buffer {
  const comma = uri.indexOf(',');
  if (comma < 0) throw new Error('data URI has no "," before its data');
  const header = uri.slice(5, comma).toLowerCase();
  if (!header.split(';').includes('base64')) {
    throw new Error(`data URI "data:${header},..." must be base64-encoded (data:image/jpeg;base64,...)`);
  }
  return nonEmpty(decodeBase64(uri.slice(comma + 1), 'data URI payload'));
}

/** A bare base64 string that decodes to a known image signature; null when it is not one. */
function fromBareBase64(text: string): Buffer | null {
  const compact = text.replace(/\s+/g, '');
  if (compact.length < SNIFF_CHARS || !BASE64.test(compact)) return null;
  if (sniffImageFormat(decodeBase64(compact.slice(0, SNIFF_CHARS), 'base64 image')) === null) return null;
  return decodeBase64(compact, 'base64 image');
}

function isInside(root: string, file: string): boolean {
  const rel = path.relative(root, file);
  return rel !== '' && rel !== '..' && !rel.startsWith('..' + path.sep) && !path.isAbsolute(rel);
}

async function fromAllowedFile(file: string, roots: readonly string[]): Promise<Buffer> {
  for (const root of roots) {
    if (!path.isAbsolute(root)) throw new Error(`allowedRoots entry "${root}" must be an absolute folder`);
  }
  let real: string;
  try {
    real = await fs.realpath(path.resolve(file));
  } catch (err) {
    throw new Error(
      `image input "${file}" is not a data URI, not a base64-encoded image and not a readable file ` +
        `(${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  // Symlinks are resolved on both sides, so a link inside a root that points outside it is refused.
  const realRoots = await Promise.all(roots.map((r) => fs.realpath(r).catch(() => path.resolve(r))));
  if (!realRoots.some((root) => isInside(root, real))) {
    throw new Error(`image file "${file}" is outside the allowed folders (${roots.join(', ')})`);
  }
  const stat = await fs.stat(real);
  if (!stat.isFile()) throw new Error(`image path "${file}" is not a regular file`);
  return nonEmpty(await fs.readFile(real), `image file "${file}"`);
}

function looksLikePath(text: string): boolean {
  return /^(\.{0,2}[\\/]|~|[A-Za-z]:[\\/])/.test(text) || /\.[A-Za-z0-9]{2,5}$/.test(text);
}

async function fromString(value: string, options: ImageInputOptions): Promise<Buffer> {
  const text = value.trim();
  if (text.length === 0) throw new Error('image input is an empty string');
  if (/^data:/i.test(text)) return fromDataUri(text);
  const base64 = fromBareBase64(text);
  if (base64) return base64;
  const roots = options.allowedRoots ?? [];
  if (roots.length > 0) return fromAllowedFile(text, roots);
  if (looksLikePath(text)) {
    throw new Error(
      `image input "${shorten(text)}" looks like a file path, but file paths are not allowed: ` +
        'list the folders images may be read from in allowedRoots (absolute paths), or send the image bytes',
    );
  }
  throw new Error(
    `image input string "${shorten(text)}" is neither a data URI, a base64-encoded image (JPEG, PNG, WebP, GIF, TIFF, ` +
      'AVIF) nor a file path (file paths also need allowedRoots)',
  );
}

function shorten(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function nonEmpty(bytes: Buffer, what = 'image input'): Buffer {
  if (bytes.length === 0) throw new Error(`${what} is empty (0 bytes)`);
  return bytes;
}

/** JSON-serialised Buffer, as a Buffer looks after crossing a JSON boundary: {type:'Buffer', data:[...]}. */
function isSerialisedBuffer(value: object): value is { type: 'Buffer'; data: number[] } {
  const v = value as { type?: unknown; data?: unknown };
  return v.type === 'Buffer' && Array.isArray(v.data);
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

const MAX_NESTING = 4;

async function resolve(value: unknown, options: ImageInputOptions, depth: number): Promise<Buffer> {
  if (Buffer.isBuffer(value)) return nonEmpty(value);
  if (value instanceof Uint8Array) return nonEmpty(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
  if (value instanceof ArrayBuffer) return nonEmpty(Buffer.from(value));
  if (typeof value === 'string') return fromString(value, options);
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    if (isSerialisedBuffer(value)) return nonEmpty(Buffer.from(value.data));
    const fields = options.fields ?? DEFAULT_IMAGE_FIELDS;
    const field = fields.find((f) => (value as Record<string, unknown>)[f] !== undefined);
    if (field !== undefined && depth < MAX_NESTING) {
      return resolve((value as Record<string, unknown>)[field], options, depth + 1);
    }
    throw new Error(`image input is an object without any of the fields ${fields.map((f) => `"${f}"`).join(', ')}`);
  }
  throw new Error(
    `unsupported image input: got ${describe(value)}; expected a Buffer, a data URI, a base64 string, ` +
      'an allowed file path, or an object holding one of these',
  );
}

/**
 * Resolves a user-supplied image value to its encoded bytes (the bytes are not decoded or checked here).
 * Accepts a Buffer/Uint8Array/ArrayBuffer, a data URI, a bare base64 string of a known image format, a file path
 * inside `allowedRoots`, or an object holding one of those under `fields` (default image, data, payload).
 */
export function resolveImageInput(value: unknown, options: ImageInputOptions = {}): Promise<Buffer> {
  return resolve(value, options, 0);
}
