// Loads a whole series into the Cornerstone cache with ONE WADO-RS request
// (series retrieve, multipart/related; type="application/dicom"): the parts
// are read as they stream in, each Part-10 object's pixel data is handed to
// the image loader's createImage (web-worker decode) under the object's wadors
// imageId. Far fewer round trips than one request per frame (6 in flight
// over HTTP/1.1). Returns false (nothing cached) when the server refuses, so
// the caller falls back to per-frame retrieval.
import dicomParser from 'dicom-parser';
import { createImage } from '@cornerstonejs/dicom-image-loader';
import { cache, type Types } from '@cornerstonejs/core';
import { ByteQueue } from './byteQueue';
import { DICOMWEB } from './queries';
import { fetchWaitingForRetrieval } from './retrieving';

const enc = new TextEncoder();
const dec = new TextDecoder();

type Progress = (loaded: number, total: number) => void;

function pixelDataOf(bytes: Uint8Array) {
  const ds = dicomParser.parseDicom(bytes);
  const el = ds.elements.x7fe00010;
  const frames = Number(ds.string('x00280008') ?? 1) || 1;
  if (!el || frames !== 1) return undefined; // multi-frame objects go frame by frame
  const sop = ds.string('x00080018') ?? '';
  const ts = ds.string('x00020010') ?? '1.2.840.10008.1.2.1';
  const pixels = el.encapsulatedPixelData
    ? dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0, el.fragments?.length ?? 1)
    : new Uint8Array(bytes.buffer, bytes.byteOffset + el.dataOffset, el.length);
  return { sop, ts, pixels };
}

/**
 * Streams the series and caches every single-frame image listed in
 * imageIdBySop. Resolves true when all of them are cached.
 */
export async function bulkLoadSeries(
  studyUID: string,
  seriesUID: string,
  imageIdBySop: Map<string, string>,
  onProgress: Progress,
  signal?: AbortSignal,
): Promise<boolean> {
  let r: Response;
  try {
    r = await fetchWaitingForRetrieval(`${DICOMWEB}/studies/${studyUID}/series/${seriesUID}`, {
      headers: { Accept: 'multipart/related; type="application/dicom"' },
      credentials: 'same-origin',
      signal,
    });
  } catch {
    return false;
  }
  const boundary = /boundary="?([^";]+)"?/i.exec(r.headers.get('Content-Type') ?? '')?.[1];
  if (!r.ok || !r.body || !boundary) return false;
  const headerEnd = enc.encode('\r\n\r\n');
  const queue = new ByteQueue();
  const reader = r.body.getReader();
  const total = imageIdBySop.size;
  const pending: Promise<unknown>[] = [];
  let loaded = 0;
  let done = false;
  const count = () => {
    loaded++;
    if (loaded === total || loaded % 16 === 0) onProgress(loaded, total);
  };

  const readMore = async () => {
    const { value, done: end } = await reader.read();
    if (value) queue.push(value);
    done = end;
  };

  for (;;) {
    // Next part: delimiter line, headers, Content-Length bytes.
    while (!done && queue.indexOf(headerEnd, 4096) < 0) await readMore();
    const at = queue.indexOf(headerEnd, 4096);
    if (at < 0) break; // end of body (closing delimiter only)
    const head = dec.decode(queue.take(at + headerEnd.length));
    if (head.includes(`--${boundary}--`) && !/content-length/i.test(head)) break;
    const len = Number(/content-length:\s*(\d+)/i.exec(head)?.[1]);
    const ts = /transfer-syntax=([0-9.]+)/i.exec(head)?.[1];
    if (!Number.isFinite(len)) {
      await reader.cancel().catch(() => {});
      return false; // cannot delimit parts without lengths: per-frame instead
    }
    while (!done && queue.length < len) await readMore();
    if (queue.length < len) break;
    const part = queue.take(len);
    const px = pixelDataOf(part);
    const imageId = px ? imageIdBySop.get(px.sop) : undefined;
    if (px && imageId) {
      if (cache.getImageLoadObject(imageId)) {
        count();
      } else {
        const promise = createImage(imageId, px.pixels, ts ?? px.ts, {}) as unknown as Promise<Types.IImage>;
        pending.push(cache.putImageLoadObject(imageId, { promise }).then(count, count));
      }
    }
  }
  await Promise.all(pending);
  return loaded >= total;
}
