// The report panel placeholder: clearly labelled as not yet developed, with the
// study's identifying information (the reporting work fills this panel).
import { useT } from '../../i18n';
import { viewerMessages } from '../messages';
import { formatDate, str, T, type DicomJson } from '../data/dicomJson';

export function ReportPanel({ study }: { study?: DicomJson }) {
  const t = useT(viewerMessages);
  return (
    <section className="yy-panel" data-testid="report-panel">
      <header><h3>{t('reportTitle')}</h3></header>
      <dl className="yy-study-info">
        <dt>{t('patient')}</dt><dd data-testid="report-patient">{str(study, T.PatientName)}</dd>
        <dt>{t('patientId')}</dt><dd>{str(study, T.PatientID)}</dd>
        <dt>{t('studyDate')}</dt><dd>{formatDate(str(study, T.StudyDate))}</dd>
        <dt>{t('studyDesc')}</dt><dd>{str(study, T.StudyDescription)}</dd>
        <dt>{t('accession')}</dt><dd>{str(study, T.AccessionNumber)}</dd>
        <dt>{t('modalities')}</dt><dd>{(study?.[T.ModalitiesInStudy]?.Value ?? []).join(', ')}</dd>
        <dt>{t('institution')}</dt><dd>{str(study, T.InstitutionName)}</dd>
      </dl>
      <p className="yy-muted">{t('reportNote')}</p>
    </section>
  );
}
