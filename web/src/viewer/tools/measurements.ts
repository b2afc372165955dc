// The measurement list's model: every annotation the measurement tools made,
// with its value text as the tool computed it (length in mm, angle in °,
// ROI mean/SD in HU and area, probe HU, arrow/label text).
import { annotation as annotationApi, Enums as ToolEnums } from '@cornerstonejs/tools';
import { eventTarget } from '@cornerstonejs/core';
import { MEASUREMENT_TOOL_NAMES } from './stackTools';

export type MeasurementRow = { uid: string; tool: string; value: string; label: string; imageId?: string };

type Stats = Record<string, unknown>;

function f(v: unknown, digits = 1): string {
  return typeof v === 'number' && Number.isFinite(v) ? v.toFixed(digits) : '—';
}

export function formatMeasurement(tool: string, data: { cachedStats?: Record<string, Stats>; text?: string; label?: string }): string {
  const stats = Object.values(data.cachedStats ?? {})[0] ?? {};
  switch (tool) {
    case 'Length':
      return `${f(stats.length)} ${String(stats.unit ?? 'mm')}`;
    case 'Angle':
    case 'CobbAngle':
      return `${f(stats.angle)}°`;
    case 'EllipticalROI':
    case 'RectangleROI': {
      const unit = String(stats.modalityUnit ?? (stats.Modality === 'CT' ? 'HU' : ''));
      return `${f(stats.mean)} ± ${f(stats.stdDev)} ${unit}, ${f(stats.area, 1)} ${String(stats.areaUnit ?? 'mm²')}`;
    }
    case 'Probe': {
      const unit = String(stats.modalityUnit ?? (stats.Modality === 'CT' ? 'HU' : ''));
      const ijk = stats.index as number[] | undefined;
      return `${f(stats.value, 0)} ${unit}${ijk ? ` @ (${ijk[0]}, ${ijk[1]})` : ''}`.trim();
    }
    case 'ArrowAnnotate':
    case 'Label':
      return data.label ?? data.text ?? '';
    default:
      return '';
  }
}

export function listMeasurements(): MeasurementRow[] {
  const all = annotationApi.state.getAllAnnotations();
  return all
    .filter((a) => !!a.metadata && MEASUREMENT_TOOL_NAMES.includes(a.metadata.toolName))
    .map((a) => ({
      uid: a.annotationUID!,
      tool: a.metadata!.toolName,
      value: formatMeasurement(a.metadata!.toolName, a.data as never),
      label: String((a.data as { label?: string }).label ?? ''),
      imageId: a.metadata!.referencedImageId,
    }));
}

const EVENTS = [
  ToolEnums.Events.ANNOTATION_ADDED,
  ToolEnums.Events.ANNOTATION_COMPLETED,
  ToolEnums.Events.ANNOTATION_MODIFIED,
  ToolEnums.Events.ANNOTATION_REMOVED,
];

/** Calls back (throttled to animation frames) whenever an annotation changes. */
export function onMeasurementsChanged(cb: () => void): () => void {
  let pending = false;
  const handler = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      cb();
    });
  };
  for (const e of EVENTS) eventTarget.addEventListener(e, handler);
  return () => {
    for (const e of EVENTS) eventTarget.removeEventListener(e, handler);
  };
}

export function removeMeasurement(uid: string) {
  annotationApi.state.removeAnnotation(uid);
}
