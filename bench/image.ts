// The benchmark's input image: a 1920×1080 JPEG with gradients and texture (so the JPEG decoder and resampler do
// real work), written once to the cache folder.
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';

export async function benchImage(cacheDir: string): Promise<string> {
  const file = path.join(cacheDir, 'image-1920x1080.jpg');
  if (fs.existsSync(file)) return file;
  const width = 1920;
  const height = 1080;
  const rgb = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      rgb[i] = (x * 255) / width;
      rgb[i + 1] = (y * 255) / height;
      rgb[i + 2] = (x * 7 + y * 13 + ((x ^ y) & 63)) & 255;
    }
  }
  fs.mkdirSync(cacheDir, { recursive: true });
  await sharp(rgb, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90 })
    .toFile(file);
  return file;
}
