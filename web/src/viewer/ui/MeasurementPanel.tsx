// The measurement list: one row per annotation with the tool and its value
// text (data-testid measurement-row-N / measurement-value-N; tests read them).
import { useEffect, useState } from 'react';
import { useT } from '../../i18n';
import { viewerMessages, type ViewerMessageKey } from '../messages';
import { listMeasurements, onMeasurementsChanged, removeMeasurement, type MeasurementRow } from '../tools/measurements';
import { getEngine } from '../stack/engine';

const TOOL_LABEL: Record<string, ViewerMessageKey> = {
  Length: 'toolLength', Angle: 'toolAngle', CobbAngle: 'toolCobb', EllipticalROI: 'toolEllipse',
  RectangleROI: 'toolRect', Probe: 'toolProbe', ArrowAnnotate: 'toolArrow', Label: 'spine',
};

export function MeasurementPanel() {
  const t = useT(viewerMessages);
  const [rows, setRows] = useState<MeasurementRow[]>(() => listMeasurements());
  useEffect(() => {
    setRows(listMeasurements());
    return onMeasurementsChanged(() => setRows(listMeasurements()));
  }, []);
  const remove = (uids: string[]) => {
    for (const uid of uids) removeMeasurement(uid);
    getEngine().render();
    setRows(listMeasurements());
  };
  return (
    <section className="yy-panel" data-testid="measurement-panel">
      <header>
        <h3>{t('measurements')}</h3>
        {rows.length > 0 && (
          <button type="button" data-testid="measurement-clear" onClick={() => remove(rows.map((r) => r.uid))}>{t('clearAll')}</button>
        )}
      </header>
      {rows.length === 0 && <p className="yy-muted">{t('noMeasurements')}</p>}
      <ol className="yy-mlist">
        {rows.map((r, i) => (
          <li key={r.uid} data-testid={`measurement-row-${i}`} data-tool={r.tool}>
            <span className="yy-mtool">{TOOL_LABEL[r.tool] ? t(TOOL_LABEL[r.tool]) : r.tool}</span>
            <span className="yy-mvalue" data-testid={`measurement-value-${i}`}>{r.value}</span>
            <button type="button" aria-label={t('delete')} data-testid={`measurement-delete-${i}`} onClick={() => remove([r.uid])}>×</button>
          </li>
        ))}
      </ol>
    </section>
  );
}
