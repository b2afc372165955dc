// DICOMweb queries of the viewer, free of Cornerstone so the page can start
// them before the (large) rendering code has loaded: the study (QIDO), its
// series (QIDO), and one series' whole metadata in ONE WADO-RS request.
import { apiFetch } from '../../api/client';
import { num, str, T, type DicomJson } from './dicomJson';

export const DICOMWEB = '/dicom-web';

export type SeriesSummary = {
  studyUID: string;
  seriesUID: string;
  modality: string;
  number: number;
  description: string;
  count: number;
};


async function dicomJson<T>(path: string): Promise<T> {
  const r = await apiFetch(`${DICOMWEB}${path}`, { headers: { Accept: 'application/dicom+json' } });
  if (r.status === 204) return [] as T;
  return (await r.json()) as T;
}

/** The study-level attributes (patient, date, description…) of one study. */
export async function fetchStudy(studyUID: string): Promise<DicomJson | undefined> {
  const rows = await dicomJson<DicomJson[]>(
    `/studies?StudyInstanceUID=${encodeURIComponent(studyUID)}&includefield=00081030,00080061,00080080,00101010,00100040`,
  );
  return rows[0];
}

/** The series of a study, ordered by series number. */
export async function fetchSeriesList(studyUID: string): Promise<SeriesSummary[]> {
  const rows = await dicomJson<DicomJson[]>(
    `/studies/${studyUID}/series?includefield=0008103E,00200011,00201209,00080060`,
  );
  return rows
    .map((r) => ({
      studyUID,
      seriesUID: str(r, T.SeriesInstanceUID),
      modality: str(r, T.Modality),
      number: num(r, T.SeriesNumber),
      description: str(r, T.SeriesDescription),
      count: num(r, T.NumberOfSeriesRelatedInstances) || 0,
    }))
    .sort((a, b) => (a.number || 0) - (b.number || 0));
}

export function frameUrl(studyUID: string, seriesUID: string, sopUID: string, frame: number): string {
  return `${location.origin}${DICOMWEB}/studies/${studyUID}/series/${seriesUID}/instances/${sopUID}/frames/${frame}`;
}

export function thumbnailUrl(studyUID: string, seriesUID: string): string {
  return `${DICOMWEB}/studies/${studyUID}/series/${seriesUID}/thumbnail?viewport=128,128`;
}

const metadataRequests = new Map<string, Promise<DicomJson[]>>();

/** The whole series' metadata (one request, shared by every caller). */
export function fetchSeriesMetadata(series: SeriesSummary): Promise<DicomJson[]> {
  let p = metadataRequests.get(series.seriesUID);
  if (!p) {
    p = dicomJson<DicomJson[]>(`/studies/${series.studyUID}/series/${series.seriesUID}/metadata`);
    metadataRequests.set(series.seriesUID, p);
    p.catch(() => metadataRequests.delete(series.seriesUID));
  }
  return p;
}
