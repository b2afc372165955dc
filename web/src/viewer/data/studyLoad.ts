// What the viewer needs before it can draw: the studies' series, the first
// study's attributes, the main series (the one a reader looks at first) and
// its metadata request, all started as soon as the page module runs.
import { DICOMWEB, fetchSeriesList, fetchSeriesMetadata, fetchStudy, type SeriesSummary } from './queries';
import { str, T, type DicomJson } from './dicomJson';
import { sortInstances } from './instanceOrder';

export type StudyLoad = {
  series: SeriesSummary[];
  study?: DicomJson;
  main?: SeriesSummary;
  /** The server-rendered first image of the main series, shown until Cornerstone draws it. */
  preview: Promise<string | undefined>;
};

/** The series asked for, else the largest series of the first study. */
export function mainSeries(all: SeriesSummary[], wanted: string[]): SeriesSummary | undefined {
  const asked = all.find((s) => wanted.includes(s.seriesUID));
  if (asked) return asked;
  const first = all.filter((s) => s.studyUID === all[0]?.studyUID);
  return [...first].sort((a, b) => b.count - a.count)[0];
}

export async function startStudyLoad(studyUIDs: string[], seriesUIDs: string[]): Promise<StudyLoad> {
  const [lists, study] = await Promise.all([
    Promise.all(studyUIDs.map((uid) => fetchSeriesList(uid))),
    fetchStudy(studyUIDs[0]),
  ]);
  const series = lists.flat();
  const main = mainSeries(series, seriesUIDs);
  const preview = main
    ? fetchSeriesMetadata(main).then((list) => {
        const first = sortInstances(list)[0];
        const sop = str(first, T.SOPInstanceUID);
        return sop ? `${DICOMWEB}/studies/${main.studyUID}/series/${main.seriesUID}/instances/${sop}/rendered` : undefined;
      }, () => undefined)
    : Promise.resolve(undefined);
  return { series, study, main, preview };
}
