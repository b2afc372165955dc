// The stack viewports' tool group: which Cornerstone tools exist, the mouse
// bindings (left = chosen tool, default W/L; middle = pan; right = zoom;
// wheel = scroll), the touch bindings (one finger = W/L or scroll, two
// fingers = pinch zoom + pan), and switching the left-button tool.
import {
  addTool, ToolGroupManager, Enums as ToolEnums, WindowLevelTool, PanTool, ZoomTool, StackScrollTool,
  LengthTool, AngleTool, CobbAngleTool, EllipticalROITool, RectangleROITool, ProbeTool, ArrowAnnotateTool,
  ReferenceLinesTool, LabelTool,
} from '@cornerstonejs/tools';
import type { Types as ToolTypes } from '@cornerstonejs/tools';

const { MouseBindings } = ToolEnums;
export const STACK_TOOL_GROUP = 'yy-stack';

/** The left-button tools a user can choose (toolbar), by id. */
export const PRIMARY_TOOLS = {
  wl: WindowLevelTool.toolName,
  pan: PanTool.toolName,
  zoom: ZoomTool.toolName,
  scroll: StackScrollTool.toolName,
  length: LengthTool.toolName,
  angle: AngleTool.toolName,
  cobb: CobbAngleTool.toolName,
  ellipse: EllipticalROITool.toolName,
  rect: RectangleROITool.toolName,
  probe: ProbeTool.toolName,
  arrow: ArrowAnnotateTool.toolName,
} as const;
export type PrimaryToolId = keyof typeof PRIMARY_TOOLS;

export const MEASUREMENT_TOOL_NAMES: string[] = [
  LengthTool.toolName, AngleTool.toolName, CobbAngleTool.toolName, EllipticalROITool.toolName,
  RectangleROITool.toolName, ProbeTool.toolName, ArrowAnnotateTool.toolName, LabelTool.toolName,
];

let registered = false;

/** Registers every tool class once (stack and volume tool groups share them). */
export function registerTools() {
  if (registered) return;
  registered = true;
  for (const t of [WindowLevelTool, PanTool, ZoomTool, StackScrollTool, LengthTool, AngleTool, CobbAngleTool,
    EllipticalROITool, RectangleROITool, ProbeTool, ArrowAnnotateTool, ReferenceLinesTool, LabelTool]) {
    addTool(t);
  }
}

function arrowText(done: (text: string) => void) {
  const text = window.prompt(document.documentElement.lang === 'en' ? 'Annotation text' : '输入标注文字');
  done(text ?? '');
}

export function createStackToolGroup(): ToolTypes.IToolGroup {
  registerTools();
  const existing = ToolGroupManager.getToolGroup(STACK_TOOL_GROUP);
  if (existing) return existing;
  const g = ToolGroupManager.createToolGroup(STACK_TOOL_GROUP)!;
  g.addTool(WindowLevelTool.toolName);
  g.addTool(PanTool.toolName);
  g.addTool(ZoomTool.toolName, { pinchToZoom: true, pan: true, minZoomScale: 0.05, maxZoomScale: 40 });
  g.addTool(StackScrollTool.toolName, { loop: false });
  for (const name of [LengthTool.toolName, AngleTool.toolName, CobbAngleTool.toolName, EllipticalROITool.toolName,
    RectangleROITool.toolName, ProbeTool.toolName]) g.addTool(name);
  g.addTool(ArrowAnnotateTool.toolName, { getTextCallback: arrowText, changeTextCallback: (_a: unknown, _d: unknown, done: (t: string) => void) => arrowText(done) });
  g.addTool(ReferenceLinesTool.toolName, { sourceViewportId: '' });
  setPrimaryTool(g, 'wl', 'wl');
  return g;
}

const STACK_MEASUREMENT_TOOLS = [LengthTool.toolName, AngleTool.toolName, CobbAngleTool.toolName, EllipticalROITool.toolName,
  RectangleROITool.toolName, ProbeTool.toolName, ArrowAnnotateTool.toolName];

/**
 * Puts `tool` on the left button (and one-finger touch); middle = pan,
 * right and pinch = zoom, wheel = scroll stay. Touch: when the chosen tool is
 * W/L, one finger does W/L or scrolls (touchMode). Cornerstone merges
 * bindings on setToolActive, so every tool is reset first.
 */
export function setPrimaryTool(g: ToolTypes.IToolGroup, tool: PrimaryToolId, touchMode: 'wl' | 'scroll') {
  const effective: PrimaryToolId = tool === 'wl' && touchMode === 'scroll' && isTouchOnly() ? 'scroll' : tool;
  const primary = [{ mouseButton: MouseBindings.Primary }];
  for (const n of [WindowLevelTool.toolName, PanTool.toolName, ZoomTool.toolName, StackScrollTool.toolName]) g.setToolDisabled(n);
  for (const n of STACK_MEASUREMENT_TOOLS) g.setToolPassive(n, { removeAllBindings: true });
  g.setToolActive(PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }, ...(effective === 'pan' ? primary : [])] });
  g.setToolActive(ZoomTool.toolName, { bindings: [{ mouseButton: MouseBindings.Secondary }, { numTouchPoints: 2 }, ...(effective === 'zoom' ? primary : [])] });
  g.setToolActive(StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }, ...(effective === 'scroll' ? primary : [])] });
  if (effective !== 'pan' && effective !== 'zoom' && effective !== 'scroll') g.setToolActive(PRIMARY_TOOLS[effective], { bindings: primary });
}

function isTouchOnly(): boolean {
  return window.matchMedia?.('(pointer: coarse)').matches ?? false;
}
