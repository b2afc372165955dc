// Spine labelling model: vertebra names in anatomical order, the name that
// follows a given one, and which labels a plane shows (those within a few
// millimetres of it) with their canvas positions.
import type { Types } from '@cornerstonejs/core';

export const VERTEBRAE: string[] = [
  ...Array.from({ length: 7 }, (_, i) => `C${i + 1}`),
  ...Array.from({ length: 12 }, (_, i) => `T${i + 1}`),
  ...Array.from({ length: 5 }, (_, i) => `L${i + 1}`),
  'S1',
];

export type SpineLabel = { uid: string; name: string; world: Types.Point3 };

/** The name after `prev` (or `start` for the first label); past S1 it numbers on. */
export function nextVertebra(labels: SpineLabel[], start: string): string {
  if (!labels.length) return start;
  const last = labels[labels.length - 1].name;
  const i = VERTEBRAE.indexOf(last);
  if (i >= 0 && i + 1 < VERTEBRAE.length) return VERTEBRAE[i + 1];
  const base = VERTEBRAE.indexOf(start);
  return VERTEBRAE[Math.min(VERTEBRAE.length - 1, base + labels.length)] ?? `#${labels.length + 1}`;
}

/** Labels near the viewport's plane (|distance| ≤ tolerance mm) with canvas coordinates. */
export function labelsOnPlane(viewport: Pick<Types.IViewport, 'getCamera' | 'worldToCanvas'>, labels: SpineLabel[], toleranceMm: number) {
  const cam = viewport.getCamera();
  const n = cam.viewPlaneNormal!;
  const f = cam.focalPoint!;
  const out: { label: SpineLabel; x: number; y: number }[] = [];
  for (const label of labels) {
    const d = (label.world[0] - f[0]) * n[0] + (label.world[1] - f[1]) * n[1] + (label.world[2] - f[2]) * n[2];
    if (Math.abs(d) > toleranceMm) continue;
    const [x, y] = viewport.worldToCanvas(label.world);
    out.push({ label, x, y });
  }
  return out;
}
