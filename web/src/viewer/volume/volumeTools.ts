// Tool groups of the volume workspace: MPR (crosshairs or W/L on the left
// button, pan middle, zoom right, slice scroll on the wheel, two-finger
// pinch/pan) and 3D (trackball rotate, zoom, pan).
import {
  addTool, state as toolsState, ToolGroupManager, Enums as ToolEnums, CrosshairsTool, TrackballRotateTool,
  WindowLevelTool, PanTool, ZoomTool, StackScrollTool,
} from '@cornerstonejs/tools';
import type { Types as ToolTypes } from '@cornerstonejs/tools';
import { registerTools } from '../tools/stackTools';

const { MouseBindings } = ToolEnums;
export const MPR_TOOL_GROUP = 'yy-mpr';
export const VR_TOOL_GROUP = 'yy-vr';

function ensureRegistered() {
  registerTools();
  for (const t of [CrosshairsTool, TrackballRotateTool]) {
    if (!toolsState.tools[t.toolName]) addTool(t);
  }
}

export function createMprToolGroup(): ToolTypes.IToolGroup {
  ensureRegistered();
  ToolGroupManager.destroyToolGroup(MPR_TOOL_GROUP);
  const g = ToolGroupManager.createToolGroup(MPR_TOOL_GROUP)!;
  g.addTool(CrosshairsTool.toolName, { getReferenceLineColor: () => 'rgb(80, 180, 255)', getReferenceLineControllable: () => true,
    getReferenceLineDraggableRotatable: () => true, getReferenceLineSlabThicknessControlsOn: () => false });
  g.addTool(WindowLevelTool.toolName);
  g.addTool(PanTool.toolName);
  g.addTool(ZoomTool.toolName, { pinchToZoom: true, pan: true });
  g.addTool(StackScrollTool.toolName);
  g.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
  g.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }, { numTouchPoints: 2 }] });
  g.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
  return g;
}

/** Left button: crosshairs, W/L, or nothing (spine labelling takes the clicks). */
export function setMprPrimary(g: ToolTypes.IToolGroup, primary: 'crosshairs' | 'wl' | 'none') {
  g.setToolPassive(CrosshairsTool.toolName);
  g.setToolDisabled(WindowLevelTool.toolName);
  if (primary === 'crosshairs') g.setToolActive(CrosshairsTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  if (primary === 'wl') g.setToolActive(WindowLevelTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
}

export function createVrToolGroup(): ToolTypes.IToolGroup {
  ensureRegistered();
  ToolGroupManager.destroyToolGroup(VR_TOOL_GROUP);
  const g = ToolGroupManager.createToolGroup(VR_TOOL_GROUP)!;
  g.addTool(TrackballRotateTool.toolName);
  g.addTool(PanTool.toolName);
  g.addTool(ZoomTool.toolName, { pinchToZoom: true, pan: true });
  g.setToolActive(TrackballRotateTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  g.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
  g.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }, { numTouchPoints: 2 }] });
  return g;
}
