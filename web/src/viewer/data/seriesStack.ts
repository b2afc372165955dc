// A series as Cornerstone shows it: its metadata (one WADO-RS request)
// registered with the wadors metaDataManager so every image's geometry is
// known before any pixel arrives, and its wadors imageIds in reading order.
import { wadors } from '@cornerstonejs/dicom-image-loader';
import { num, nums, str, T, type DicomJson } from './dicomJson';
import { fetchSeriesMetadata, frameUrl, type SeriesSummary } from './queries';
import { positionAlongNormal, sortInstances } from './instanceOrder';

export type { SeriesSummary } from './queries';

export type SeriesStack = SeriesSummary & {
  imageIds: string[];
  /** The instance JSON each imageId was registered with (tag browser, overlay). */
  metaByImageId: Map<string, DicomJson>;
  frameOfReferenceUID: string;
  /** True when the images are slices of one volume (same orientation, ≥ 3 positions). */
  isReconstructable: boolean;
};

const loadedStacks = new Map<string, Promise<SeriesStack>>();

/**
 * Fetches a series' metadata (one request), registers every frame with the
 * wadors metaDataManager and returns its imageIds in reading order
 * (InstanceNumber, then position along the slice normal).
 */
export function loadSeriesStack(series: SeriesSummary): Promise<SeriesStack> {
  const cached = loadedStacks.get(series.seriesUID);
  if (cached) return cached;
  const p = (async () => {
    const instances = sortInstances(await fetchSeriesMetadata(series));
    const imageIds: string[] = [];
    const metaByImageId = new Map<string, DicomJson>();
    for (const inst of instances) {
      const sop = str(inst, T.SOPInstanceUID);
      const frames = Math.max(1, num(inst, T.NumberOfFrames) || 1);
      for (let f = 1; f <= frames; f++) {
        const imageId = `wadors:${frameUrl(series.studyUID, series.seriesUID, sop, f)}`;
        if (f === 1) wadors.metaDataManager.add(imageId, inst as never);
        imageIds.push(imageId);
        metaByImageId.set(imageId, inst);
      }
    }
    const first = instances[0];
    const orientations = new Set(instances.map((i) => nums(i, T.ImageOrientationPatient).map((v) => v.toFixed(3)).join(',')));
    const positions = new Set(instances.map((i) => positionAlongNormal(i).toFixed(2)));
    return {
      ...series,
      modality: series.modality || str(first, T.Modality),
      count: imageIds.length,
      imageIds,
      metaByImageId,
      frameOfReferenceUID: str(first, T.FrameOfReferenceUID),
      isReconstructable: orientations.size === 1 && positions.size >= 3 && positions.size === instances.length,
    };
  })();
  loadedStacks.set(series.seriesUID, p);
  p.catch(() => loadedStacks.delete(series.seriesUID));
  return p;
}

/** SOP Instance UID → imageId, for the series' single-frame instances. */
export function singleFrameImageIds(stack: SeriesStack): Map<string, string> {
  const out = new Map<string, string>();
  for (const imageId of stack.imageIds) {
    const inst = stack.metaByImageId.get(imageId);
    if (!inst || (num(inst, T.NumberOfFrames) || 1) !== 1) continue;
    out.set(str(inst, T.SOPInstanceUID), imageId);
  }
  return out;
}
