// resolveImageInput: every accepted form, file-path confinement, and the errors for everything else.

import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { resolveImageInput, sniffImageFormat } from '../../lib/pipeline/image-input';
import { encodeJpeg, encodePng, paintedImage, testCard, toSharp } from '../support/synthetic-images';

describe('image input resolution', function () {
  let jpeg: Buffer;
  let png: Buffer;
  let webp: Buffer;
  let gif: Buffer;
  let tiff: Buffer;
  let avif: Buffer;
  before(async function () {
    const image = testCard(16, 12);
    jpeg = await encodeJpeg(image);
    png = await encodePng(image);
    webp = await toSharp(image).webp().toBuffer();
    gif = await toSharp(image).gif().toBuffer();
    tiff = await toSharp(image).tiff().toBuffer();
    avif = await toSharp(paintedImage(16, 16, [9, 9, 9], []))
      .avif()
      .toBuffer();
  });

  it('recognises each image format from its first bytes', function () {
    assert.equal(sniffImageFormat(jpeg), 'jpeg');
    assert.equal(sniffImageFormat(png), 'png');
    assert.equal(sniffImageFormat(webp), 'webp');
    assert.equal(sniffImageFormat(gif), 'gif');
    assert.equal(sniffImageFormat(tiff), 'tiff');
    assert.equal(sniffImageFormat(avif), 'avif');
    assert.equal(sniffImageFormat(Buffer.from('just text here')), null);
    assert.equal(sniffImageFormat(new Uint8Array(0)), null);
  });

  it('passes a Buffer through, and wraps a Uint8Array view or ArrayBuffer without changing bytes', async function () {
    assert.equal(await resolveImageInput(jpeg), jpeg);
    const backing = new Uint8Array(png.length + 8);
    backing.set(png, 4);
    assert.deepEqual(await resolveImageInput(backing.subarray(4, 4 + png.length)), png);
    const copy = png.buffer.slice(png.byteOffset, png.byteOffset + png.length);
    assert.deepEqual(await resolveImageInput(copy), png);
  });

  it('decodes a data URI', async function () {
    const uri = `data:image/jpeg;base64,${jpeg.toString('base64')}`;
    assert.deepEqual(await resolveImageInput(uri), jpeg);
    assert.deepEqual(await resolveImageInput(`  DATA:image/png;charset=x;base64,${png.toString('base64')}\n`), png);
  });

  it('decodes bare base64 of each format, with line breaks or URL-safe characters', async function () {
    for (const bytes of [jpeg, png, webp, gif, tiff, avif]) {
      assert.deepEqual(await resolveImageInput(bytes.toString('base64')), bytes);
    }
    const wrapped = jpeg.toString('base64').replace(/.{76}/g, '$&\r\n');
    assert.deepEqual(await resolveImageInput(wrapped), jpeg);
    assert.deepEqual(await resolveImageInput(png.toString('base64url')), png);
  });

  it('finds the image inside an object: image, data, payload, custom fields, nested, JSON-serialised Buffer', async function () {
    assert.deepEqual(await resolveImageInput({ image: jpeg.toString('base64') }), jpeg);
    assert.deepEqual(await resolveImageInput({ data: png }), png);
    assert.deepEqual(await resolveImageInput({ payload: `data:image/png;base64,${png.toString('base64')}` }), png);
    assert.deepEqual(await resolveImageInput({ frame: jpeg }, { fields: ['frame'] }), jpeg);
    assert.deepEqual(await resolveImageInput({ payload: { image: jpeg } }), jpeg);
    assert.deepEqual(await resolveImageInput(JSON.parse(JSON.stringify({ image: png }))), png);
    // the first field present wins
    assert.deepEqual(await resolveImageInput({ image: png, data: jpeg }), png);
  });

  it('explains what is wrong with unusable values', async function () {
    await assert.rejects(resolveImageInput(Buffer.alloc(0)), /image input is empty \(0 bytes\)/);
    await assert.rejects(resolveImageInput(new Uint8Array(0)), /empty/);
    await assert.rejects(resolveImageInput('   '), /empty string/);
    await assert.rejects(resolveImageInput('data:image/png,rawtext'), /must be base64-encoded/);
    await assert.rejects(resolveImageInput('data:image/png;base64'), /no "," before its data/);
    await assert.rejects(resolveImageInput('data:image/png;base64,'), /data URI payload is empty/);
    await assert.rejects(resolveImageInput('data:image/png;base64,@@@@'), /not valid base64/);
    await assert.rejects(
      resolveImageInput(Buffer.from('this is some plain text, base64-encoded').toString('base64')),
      /neither a data URI, a base64-encoded image .* nor a file path/,
    );
    await assert.rejects(resolveImageInput('hello world'), /neither a data URI/);
    await assert.rejects(resolveImageInput({ picture: jpeg }), /object without any of the fields "image", "data", "payload"/);
    for (const value of [42, true, null, undefined, [jpeg]]) {
      await assert.rejects(resolveImageInput(value), /unsupported image input: got (a number|a boolean|null|undefined|an array)/);
    }
  });
});

describe('image input file paths', function () {
  let base: string;
  let root: string;
  let outside: string;
  let jpeg: Buffer;

  before(async function () {
    base = await fs.mkdtemp(path.join(os.tmpdir(), 'llava-image-input-'));
    root = path.join(base, 'allowed');
    outside = path.join(base, 'secret');
    await fs.mkdir(path.join(root, 'cams'), { recursive: true });
    await fs.mkdir(outside);
    jpeg = await encodeJpeg(testCard(8, 8));
    await fs.writeFile(path.join(root, 'cams', 'door.jpg'), jpeg);
    await fs.writeFile(path.join(outside, 'private.jpg'), jpeg);
    await fs.symlink(path.join(outside, 'private.jpg'), path.join(root, 'link-out.jpg'));
    await fs.symlink(path.join(root, 'cams', 'door.jpg'), path.join(base, 'link-in.jpg'));
  });

  after(async function () {
    await fs.rm(base, { recursive: true, force: true });
  });

  it('refuses file paths by default and says how to allow them', async function () {
    await assert.rejects(
      resolveImageInput(path.join(root, 'cams', 'door.jpg')),
      (err: Error) => /file paths are not allowed/.test(err.message) && /allowedRoots/.test(err.message),
    );
    await assert.rejects(resolveImageInput('./door.jpg'), /file paths are not allowed/);
    await assert.rejects(resolveImageInput('door.jpg'), /file paths are not allowed/);
  });

  it('reads a file inside an allowed root', async function () {
    assert.deepEqual(await resolveImageInput(path.join(root, 'cams', 'door.jpg'), { allowedRoots: [root] }), jpeg);
    // a symlink outside the roots that resolves to a file inside one is fine: the real path counts
    assert.deepEqual(await resolveImageInput(path.join(base, 'link-in.jpg'), { allowedRoots: [root] }), jpeg);
    assert.deepEqual(await resolveImageInput({ payload: path.join(root, 'cams', 'door.jpg') }, { allowedRoots: [outside, root] }), jpeg);
  });

  it('refuses files outside the roots, ".." escapes and symlink escapes', async function () {
    const options = { allowedRoots: [root] };
    await assert.rejects(resolveImageInput(path.join(outside, 'private.jpg'), options), /outside the allowed folders/);
    await assert.rejects(resolveImageInput(`${root}/../secret/private.jpg`, options), /outside the allowed folders/);
    await assert.rejects(resolveImageInput(path.join(root, 'link-out.jpg'), options), /outside the allowed folders/);
    // a sibling folder whose name starts with the root's name is not inside it
    await fs.mkdir(`${root}-evil`, { recursive: true });
    await fs.writeFile(`${root}-evil/x.jpg`, jpeg);
    await assert.rejects(resolveImageInput(`${root}-evil/x.jpg`, options), /outside the allowed folders/);
  });

  it('explains missing files, folders and relative roots', async function () {
    await assert.rejects(resolveImageInput(path.join(root, 'nope.jpg'), { allowedRoots: [root] }), /not a readable file \(ENOENT\)/);
    await assert.rejects(resolveImageInput(path.join(root, 'cams'), { allowedRoots: [root] }), /not a regular file/);
    await assert.rejects(resolveImageInput(path.join(root, 'cams', 'door.jpg'), { allowedRoots: ['relative/dir'] }), /must be an absolute folder/);
  });
});
