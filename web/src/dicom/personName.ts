// DICOM person names (PS3.5 §6.2, PN) as people write them, shared by the
// study list and the viewer.

export const CJK = /[\u3400-\u9fff\uf900-\ufaff]|[\ud840-\ud87f][\udc00-\udfff]/;

/**
 * One component group ("张^三", "Zhang^San") as people write it: family name
 * first; Chinese names without a space (张三), others with one (Zhang San).
 */
export function personNameGroup(g: string): string {
  const parts = g.split('^').map((p) => p.trim()).filter(Boolean);
  if (!parts.length) return '';
  return CJK.test(g) ? parts.slice(0, 2).join('') : parts.slice(0, 3).join(' ');
}
