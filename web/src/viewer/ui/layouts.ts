// Viewport grid layouts: desktop 1×1, 1×2, 2×2; phone side-by-side, stacked
// and 3:1 (one large viewport over three small ones). Each gives its number
// of cells and the CSS grid that places them.
export type LayoutId = '1x1' | '1x2' | '2x1' | '2x2' | '3to1';

export type Layout = { id: LayoutId; cells: number; label: string; columns: string; rows: string; areas?: string };

export const LAYOUTS: Record<LayoutId, Layout> = {
  '1x1': { id: '1x1', cells: 1, label: '1×1', columns: '1fr', rows: '1fr' },
  '1x2': { id: '1x2', cells: 2, label: '1×2', columns: '1fr 1fr', rows: '1fr' },
  '2x1': { id: '2x1', cells: 2, label: '2×1', columns: '1fr', rows: '1fr 1fr' },
  '2x2': { id: '2x2', cells: 4, label: '2×2', columns: '1fr 1fr', rows: '1fr 1fr' },
  '3to1': { id: '3to1', cells: 4, label: '3:1', columns: '1fr 1fr 1fr', rows: '3fr 1fr', areas: '"a a a" "b c d"' },
};

export const DESKTOP_LAYOUTS: LayoutId[] = ['1x1', '1x2', '2x2', '3to1'];
/** Phone: side-by-side (1×2), stacked (2×1), 3:1. */
export const PHONE_LAYOUTS: LayoutId[] = ['1x1', '1x2', '2x1', '3to1'];

export function cellArea(layout: Layout, index: number): string | undefined {
  return layout.areas ? 'abcd'[index] : undefined;
}
