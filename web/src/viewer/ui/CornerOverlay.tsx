// The DICOM overlay in a viewport's four corners: patient (top left), study
// (top right), series and image number / slice location and thickness
// (bottom left), window/level and zoom (bottom right).
import { useT } from '../../i18n';
import { viewerMessages } from '../messages';
import { formatDate, num, str, T } from '../data/dicomJson';
import type { SeriesStack } from '../data/seriesStack';

export type OverlayState = {
  imageIndex: number;
  imageCount: number;
  imageId: string;
  windowWidth: number;
  windowCenter: number;
  zoom: number;
};

export function CornerOverlay({ stack, state }: { stack: SeriesStack; state: OverlayState }) {
  const t = useT(viewerMessages);
  const m = stack.metaByImageId.get(state.imageId);
  const loc = num(m, T.SliceLocation);
  const thk = num(m, T.SliceThickness);
  const sex = str(m, T.PatientSex);
  const age = str(m, T.PatientAge);
  return (
    <div className="yy-overlay" data-testid="corner-overlay">
      <div className="yy-ov-tl">
        <div data-testid="overlay-patient">{str(m, T.PatientName)}</div>
        <div>{str(m, T.PatientID)} {sex} {age}</div>
      </div>
      <div className="yy-ov-tr">
        <div>{str(m, T.InstitutionName)}</div>
        <div>{formatDate(str(m, T.StudyDate))}</div>
        <div>{str(m, T.StudyDescription)}</div>
      </div>
      <div className="yy-ov-bl">
        <div className="yy-ov-extra">{t('series')}: {stack.number} {stack.description}</div>
        <div data-testid="overlay-image">{t('image')}: {state.imageIndex + 1} / {state.imageCount}</div>
        {Number.isFinite(loc) && <div className="yy-ov-extra">{t('location')}: {loc.toFixed(1)} mm</div>}
        {Number.isFinite(thk) && <div className="yy-ov-extra">{t('thickness')}: {thk.toFixed(2)} mm</div>}
      </div>
      <div className="yy-ov-br">
        <div data-testid="overlay-wl">W: {Math.round(state.windowWidth)} L: {Math.round(state.windowCenter)}</div>
        <div className="yy-ov-extra">{t('zoom')}: {state.zoom.toFixed(2)}×</div>
      </div>
    </div>
  );
}
