// The viewer toolbar: left-button tool, W/L presets, layout, sync, sharpening,
// reset, 2D/MPR/3D mode, panels, touch mode (phones) and language. Icons with
// zh/en labels; every control has a data-testid.
import { useLocale, useT } from '../../i18n';
import { viewerMessages, type ViewerMessageKey } from '../messages';
import type { PrimaryToolId } from '../tools/stackTools';
import type { WindowPreset } from '../tools/presets';
import { LAYOUTS, type LayoutId } from './layouts';

export type PanelId = 'measurements' | 'tags' | 'report' | 'cine';
export type ViewMode = 'stack' | 'mpr' | '3d';

const TOOLS: { id: PrimaryToolId; icon: string; label: ViewerMessageKey }[] = [
  { id: 'wl', icon: '◐', label: 'toolWL' },
  { id: 'pan', icon: '✥', label: 'toolPan' },
  { id: 'zoom', icon: '⊕', label: 'toolZoom' },
  { id: 'scroll', icon: '⇅', label: 'toolScroll' },
  { id: 'length', icon: '⟷', label: 'toolLength' },
  { id: 'angle', icon: '∠', label: 'toolAngle' },
  { id: 'cobb', icon: '∡', label: 'toolCobb' },
  { id: 'ellipse', icon: '◯', label: 'toolEllipse' },
  { id: 'rect', icon: '▭', label: 'toolRect' },
  { id: 'probe', icon: '⊙', label: 'toolProbe' },
  { id: 'arrow', icon: '➚', label: 'toolArrow' },
];

const PANELS: { id: PanelId; icon: string; label: ViewerMessageKey }[] = [
  { id: 'measurements', icon: '☰', label: 'measurements' },
  { id: 'cine', icon: '▶', label: 'cine' },
  { id: 'tags', icon: '#', label: 'tags' },
  { id: 'report', icon: '✎', label: 'report' },
];

export type ToolbarProps = {
  phone: boolean;
  mode: ViewMode;
  tool: PrimaryToolId;
  onTool: (t: PrimaryToolId) => void;
  presets: WindowPreset[];
  onPreset: (p: WindowPreset | null) => void;
  layouts: LayoutId[];
  layout: LayoutId;
  onLayout: (l: LayoutId) => void;
  sync: boolean;
  onSync: (on: boolean) => void;
  sharpening: number;
  sharpenOn: boolean;
  onSharpen: (on: boolean, strength: number) => void;
  onReset: () => void;
  onMode: (m: ViewMode) => void;
  panel: PanelId | null;
  onPanel: (p: PanelId | null) => void;
  touchMode: 'wl' | 'scroll';
  onTouchMode: (m: 'wl' | 'scroll') => void;
};

function Btn({ id, icon, label, active, onClick, disabled }: { id: string; icon: string; label: string; active?: boolean; onClick: () => void; disabled?: boolean }) {
  return (
    <button type="button" className={`yy-btn${active ? ' yy-btn-active' : ''}`} data-testid={id} aria-pressed={active} onClick={onClick} title={label} disabled={disabled}>
      <span className="yy-icon" aria-hidden>{icon}</span>
      <span className="yy-label">{label}</span>
    </button>
  );
}

export function Toolbar(p: ToolbarProps) {
  const t = useT(viewerMessages);
  const { locale, setLocale } = useLocale();
  const stack = p.mode === 'stack';
  return (
    <div className="yy-toolbar" data-testid="viewer-toolbar" role="toolbar">
      {stack && p.phone && (
        <div className="yy-group">
          <Btn id="touch-mode" icon={p.touchMode === 'wl' ? '◐' : '⇅'} label={`${t('touchMode')}: ${t(p.touchMode === 'wl' ? 'touchWL' : 'touchScroll')}`}
            onClick={() => p.onTouchMode(p.touchMode === 'wl' ? 'scroll' : 'wl')} />
        </div>
      )}
      {stack && (
        <div className="yy-group">
          {TOOLS.map((x) => (
            <Btn key={x.id} id={`tool-${x.id}`} icon={x.icon} label={t(x.label)} active={p.tool === x.id} onClick={() => p.onTool(x.id)} />
          ))}
        </div>
      )}
      {stack && (
        <div className="yy-group">
          <select data-testid="preset-select" aria-label={t('presets')} value="" onChange={(e) => {
            const v = e.target.value;
            if (v === 'default') p.onPreset(null);
            else { const pr = p.presets.find((x) => x.id === v); if (pr) p.onPreset(pr); }
          }}>
            <option value="" disabled>{t('presets')}</option>
            <option value="default">{t('presetDefault')}</option>
            {p.presets.map((x) => (
              <option key={x.id} value={x.id}>{t(x.label)} ({x.width}/{x.center})</option>
            ))}
          </select>
          <select data-testid="layout-select" aria-label={t('layout')} value={p.layout} onChange={(e) => p.onLayout(e.target.value as LayoutId)}>
            {p.layouts.map((l) => <option key={l} value={l}>{t('layout')} {LAYOUTS[l].label}</option>)}
          </select>
          <Btn id="sync-toggle" icon="⇆" label={t('sync')} active={p.sync} onClick={() => p.onSync(!p.sync)} />
          <Btn id="sharpen-toggle" icon="◭" label={t('sharpen')} active={p.sharpenOn} onClick={() => p.onSharpen(!p.sharpenOn, p.sharpening)} />
          {p.sharpenOn && (
            <input type="range" min={0.05} max={1} step={0.05} value={p.sharpening} data-testid="sharpen-strength" aria-label={t('strength')}
              onChange={(e) => p.onSharpen(true, Number(e.target.value))} />
          )}
          <Btn id="reset" icon="⟲" label={t('reset')} onClick={p.onReset} />
        </div>
      )}
      <div className="yy-group">
        <Btn id="mode-stack" icon="▦" label={t('stack')} active={p.mode === 'stack'} onClick={() => p.onMode('stack')} />
        <Btn id="mode-mpr" icon="✛" label={t('mpr')} active={p.mode === 'mpr'} onClick={() => p.onMode('mpr')} />
        <Btn id="mode-3d" icon="◈" label={t('vr3d')} active={p.mode === '3d'} onClick={() => p.onMode('3d')} />
      </div>
      <div className="yy-group">
        {PANELS.filter((x) => stack || x.id !== 'cine').map((x) => (
          <Btn key={x.id} id={`panel-${x.id}`} icon={x.icon} label={t(x.label)} active={p.panel === x.id} onClick={() => p.onPanel(p.panel === x.id ? null : x.id)} />
        ))}
        <Btn id="lang-toggle" icon="文" label={t('language')} onClick={() => setLocale(locale === 'en' ? 'zh-CN' : 'en')} />
      </div>
    </div>
  );
}
