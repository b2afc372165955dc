// Reading values out of DICOM JSON (PS3.18 F.2) objects as QIDO/WADO-RS return them.
import { personNameGroup } from '../../dicom/personName';

export type DicomJsonValue = { vr: string; Value?: unknown[]; BulkDataURI?: string; InlineBinary?: string };
export type DicomJson = Record<string, DicomJsonValue>;

/** First value of a tag as a string (a person name as "张杰 (Zhang Jie)"). */
export function str(obj: DicomJson | undefined, tag: string): string {
  const v = obj?.[tag]?.Value?.[0];
  if (v == null) return '';
  if (typeof v === 'object') {
    const pn = v as { Alphabetic?: string; Ideographic?: string };
    const ideo = pn.Ideographic ? personNameGroup(pn.Ideographic) : '';
    const alpha = pn.Alphabetic ? personNameGroup(pn.Alphabetic) : '';
    if (ideo && alpha) return `${ideo} (${alpha})`;
    return ideo || alpha;
  }
  return String(v);
}

/** First value of a tag as a number (NaN when absent). */
export function num(obj: DicomJson | undefined, tag: string): number {
  const v = obj?.[tag]?.Value?.[0];
  return v == null || v === '' ? NaN : Number(v);
}

/** All values of a tag as numbers. */
export function nums(obj: DicomJson | undefined, tag: string): number[] {
  return (obj?.[tag]?.Value ?? []).map((v) => Number(v));
}

/** Displayable text of an attribute value (for the tag browser). */
export function displayValue(v: DicomJsonValue): string {
  if (v.BulkDataURI) return `<bulk data>`;
  if (v.InlineBinary) return `<binary ${v.InlineBinary.length} b64>`;
  if (!v.Value) return '';
  if (v.vr === 'SQ') return `<${v.Value.length} item(s)>`;
  return v.Value.map((x) => (x && typeof x === 'object' ? ((x as { Alphabetic?: string }).Alphabetic ?? JSON.stringify(x)) : String(x))).join('\\');
}

/** DICOM date YYYYMMDD → YYYY-MM-DD. */
export function formatDate(d: string): string {
  return /^\d{8}$/.test(d) ? `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}` : d;
}

export const T = {
  PatientName: '00100010', PatientID: '00100020', PatientSex: '00100040', PatientAge: '00101010', PatientBirthDate: '00100030',
  StudyInstanceUID: '0020000D', StudyDate: '00080020', StudyTime: '00080030', StudyDescription: '00081030',
  AccessionNumber: '00080050', ModalitiesInStudy: '00080061', InstitutionName: '00080080',
  SeriesInstanceUID: '0020000E', SeriesNumber: '00200011', SeriesDescription: '0008103E', Modality: '00080060',
  NumberOfSeriesRelatedInstances: '00201209', SOPInstanceUID: '00080018', SOPClassUID: '00080016', InstanceNumber: '00200013',
  NumberOfFrames: '00280008', FrameOfReferenceUID: '00200052', ImagePositionPatient: '00200032',
  ImageOrientationPatient: '00200037', SliceLocation: '00201041', SliceThickness: '00180050', PixelSpacing: '00280030',
  Rows: '00280010', Columns: '00280011', WindowCenter: '00281050', WindowWidth: '00281051', BodyPartExamined: '00180015',
  RescaleSlope: '00281053', RescaleIntercept: '00281052', BitsStored: '00280101', PixelRepresentation: '00280103',
} as const;
