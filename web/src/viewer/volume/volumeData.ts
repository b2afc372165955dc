// Volumes of the MPR/3D workspace: a streaming image volume built from a
// series' wadors imageIds (geometry from the metadata already registered),
// optionally thinned along the slice axis for weak (software) renderers, and
// the policy that decides that thinning.
import { cache, volumeLoader, eventTarget, Enums, type Types } from '@cornerstonejs/core';
import type { SeriesStack } from '../data/seriesStack';
import { volumeSupport } from '../cs/device';

/** Renders on the CPU (SwiftShader, llvmpipe): keep volumes and samples small. */
export function isSoftwareRenderer(): boolean {
  const s = volumeSupport();
  return s.ok && /swiftshader|llvmpipe|software/i.test(s.renderer);
}

/** Every `step`-th slice (the volume stays regular: same spacing between kept slices). */
function thinned(imageIds: string[], step: number): string[] {
  return step <= 1 ? imageIds : imageIds.filter((_, i) => i % step === 0);
}

export type LoadedVolume = { volumeId: string; done: Promise<void> };

/** Creates (or reuses) the streaming volume of a series and starts loading it. */
export async function ensureVolume(stack: SeriesStack, sliceStep = 1): Promise<LoadedVolume> {
  const volumeId = `cornerstoneStreamingImageVolume:yy-${stack.seriesUID}-k${sliceStep}`;
  const existing = cache.getVolume(volumeId) as (Types.IImageVolume & { loadStatus?: { loaded: boolean } }) | undefined;
  const done = new Promise<void>((resolve) => {
    if (existing?.loadStatus?.loaded) return resolve();
    const on = (e: Event) => {
      if ((e as CustomEvent<{ volumeId: string }>).detail?.volumeId !== volumeId) return;
      eventTarget.removeEventListener(Enums.Events.IMAGE_VOLUME_LOADING_COMPLETED, on);
      resolve();
    };
    eventTarget.addEventListener(Enums.Events.IMAGE_VOLUME_LOADING_COMPLETED, on);
  });
  if (!existing) {
    const volume = await volumeLoader.createAndCacheVolume(volumeId, { imageIds: thinned(stack.imageIds, sliceStep) });
    (volume as unknown as { load: () => void }).load();
  }
  return { volumeId, done };
}
