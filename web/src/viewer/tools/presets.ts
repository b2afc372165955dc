// Window width/level presets per modality. CT has fixed clinical windows;
// other modalities (MR, DX, CR…) use the window stored in the image.
import type { ViewerMessageKey } from '../messages';

export type WindowPreset = { id: string; label: ViewerMessageKey; width: number; center: number };

export const CT_PRESETS: WindowPreset[] = [
  { id: 'soft', label: 'presetSoft', width: 400, center: 40 },
  { id: 'lung', label: 'presetLung', width: 1500, center: -600 },
  { id: 'bone', label: 'presetBone', width: 2000, center: 400 },
  { id: 'brain', label: 'presetBrain', width: 80, center: 40 },
  { id: 'abdomen', label: 'presetAbdomen', width: 350, center: 50 },
];

export function presetsFor(modality: string): WindowPreset[] {
  return modality === 'CT' ? CT_PRESETS : [];
}

/** VOI range (lower, upper) of a width/center pair (DICOM linear function). */
export function voiRange(width: number, center: number) {
  return { lower: center - width / 2, upper: center + width / 2 };
}
