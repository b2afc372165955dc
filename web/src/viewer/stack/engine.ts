// The viewer's one rendering engine and small helpers around it (looking up a
// stack viewport, re-rendering, the test hook that maps image pixels to page
// coordinates so browser tests can draw with real mouse drags).
import { RenderingEngine, getRenderingEngine, utilities, type StackViewport, type Types } from '@cornerstonejs/core';

export const ENGINE_ID = 'yy-engine';

export function getEngine(): RenderingEngine {
  return (getRenderingEngine(ENGINE_ID) as RenderingEngine | undefined) ?? new RenderingEngine(ENGINE_ID);
}

export function stackViewport(viewportId: string): StackViewport | undefined {
  const e = getRenderingEngine(ENGINE_ID);
  try {
    return e?.getViewport(viewportId) as StackViewport | undefined;
  } catch {
    return undefined;
  }
}

/** Page (client) coordinates of an image point (column, row; pixel edges on integers, as Cornerstone counts) in a viewport. */
export function imageToClient(viewportId: string, col: number, row: number): [number, number] | null {
  const e = getRenderingEngine(ENGINE_ID);
  const vp = e?.getViewport(viewportId) as Types.IViewport | undefined;
  if (!vp) return null;
  const imageId = (vp as StackViewport).getCurrentImageId?.();
  if (!imageId) return null;
  const world = utilities.imageToWorldCoords(imageId, [col, row]);
  const canvas = vp.worldToCanvas(world as Types.Point3);
  const rect = vp.element.getBoundingClientRect();
  return [rect.left + canvas[0], rect.top + canvas[1]];
}

/** Page coordinates of a viewport's camera focal point (the crosshairs' centre in MPR). */
export function focalPointClient(viewportId: string): [number, number] | null {
  const vp = getRenderingEngine(ENGINE_ID)?.getViewport(viewportId) as Types.IViewport | undefined;
  if (!vp) return null;
  const canvas = vp.worldToCanvas(vp.getCamera().focalPoint as Types.Point3);
  const rect = vp.element.getBoundingClientRect();
  return [rect.left + canvas[0], rect.top + canvas[1]];
}

/** Page coordinates of a world point in a viewport, and the viewport's focal point in world coordinates. */
export function worldToClient(viewportId: string, world: Types.Point3): [number, number] | null {
  const vp = getRenderingEngine(ENGINE_ID)?.getViewport(viewportId) as Types.IViewport | undefined;
  if (!vp) return null;
  const canvas = vp.worldToCanvas(world);
  const rect = vp.element.getBoundingClientRect();
  return [rect.left + canvas[0], rect.top + canvas[1]];
}

export function focalPoint(viewportId: string): Types.Point3 | null {
  const vp = getRenderingEngine(ENGINE_ID)?.getViewport(viewportId) as Types.IViewport | undefined;
  return vp ? ([...vp.getCamera().focalPoint!] as Types.Point3) : null;
}

declare global {
  interface Window {
    __yyViewer?: {
      imageToClient: typeof imageToClient; focalPointClient: typeof focalPointClient; worldToClient: typeof worldToClient;
      focalPoint: typeof focalPoint; engineId: string;
    };
  }
}
window.__yyViewer = { imageToClient, focalPointClient, worldToClient, focalPoint, engineId: ENGINE_ID };
