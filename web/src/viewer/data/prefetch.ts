// Loads a series' images into the Cornerstone cache in reading order with a
// bounded number of requests in flight, after the displayed image. Reports
// progress and marks `yunying:series-loaded` when the displayed series is
// complete. One prefetch runs at a time; starting another cancels the rest of
// the previous queue (images already in flight still land in the cache).
import { cache, imageLoader, Enums } from '@cornerstonejs/core';
import { abandonHtj2k } from './transferSyntax';

export type PrefetchProgress = { seriesUID: string; loaded: number; total: number };

const CONCURRENCY = 8;
let current: { cancelled: boolean } | undefined;

export function isCached(imageId: string): boolean {
  return !!cache.getImageLoadObject(imageId) || !!cache.getImage(imageId);
}

/** Drops a (failed) image from the cache so it can be requested again. */
export function forgetImage(imageId: string) {
  try {
    cache.removeImageLoadObject(imageId, { force: true });
  } catch {
    // not in the cache: nothing to forget
  }
}

export function prefetchSeries(
  seriesUID: string,
  imageIds: string[],
  startIndex: number,
  onProgress: (p: PrefetchProgress) => void,
): () => void {
  if (current) current.cancelled = true;
  const token = { cancelled: false };
  current = token;
  // Reading order from the displayed image to the end, then the images before it.
  const order = [...imageIds.slice(startIndex), ...imageIds.slice(0, startIndex)];
  const total = imageIds.length;
  let loaded = 0;
  let next = 0;
  let reported = -1;
  const report = () => {
    if (loaded === reported) return;
    reported = loaded;
    onProgress({ seriesUID, loaded, total });
  };
  const worker = async () => {
    while (!token.cancelled && next < order.length) {
      const imageId = order[next++];
      const load = () => imageLoader.loadAndCacheImage(imageId, { priority: 0, requestType: Enums.RequestType.Prefetch } as never);
      try {
        await load();
      } catch {
        // Without a usable HTJ2K copy (406/404, or not decodable here) the stored syntax is tried once more.
        abandonHtj2k();
        forgetImage(imageId);
        await load().catch(() => {});
      }
      loaded++;
      if (loaded === total || loaded % 8 === 0) report();
    }
  };
  for (let i = 0; i < CONCURRENCY; i++) void worker();
  return () => {
    token.cancelled = true;
  };
}
