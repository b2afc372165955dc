// Texts of the study list (search form, results, paging).
import type { Messages } from '../../i18n';

export type StudyListKey =
  | 'pageTitle'
  | 'search'
  | 'reset'
  | 'filters'
  | 'filtersActive'
  | 'patientName'
  | 'patientNameHint'
  | 'patientId'
  | 'accession'
  | 'studyDate'
  | 'dateFrom'
  | 'dateTo'
  | 'today'
  | 'last7'
  | 'last30'
  | 'anyDate'
  | 'modality'
  | 'institution'
  | 'allInstitutions'
  | 'sortBy'
  | 'ascending'
  | 'descending'
  | 'colPatient'
  | 'colPatientId'
  | 'colSexAge'
  | 'colDate'
  | 'colModality'
  | 'colDescription'
  | 'colAccession'
  | 'colInstitution'
  | 'colImages'
  | 'seriesImages'
  | 'open'
  | 'openStudy'
  | 'loading'
  | 'empty'
  | 'emptyHint'
  | 'error'
  | 'forbidden'
  | 'retry'
  | 'pageOf'
  | 'pageN'
  | 'total'
  | 'shown'
  | 'prev'
  | 'next'
  | 'pageSize'
  | 'pageOnlySort'
  | 'results'
  | 'issuer'
  | 'adminTitle'
  | 'adminHint';

export const studyListMessages: Messages<StudyListKey> = {
  'zh-CN': {
    pageTitle: '检查列表',
    search: '查询',
    reset: '重置',
    filters: '筛选条件',
    filtersActive: '筛选（{n}）',
    patientName: '患者姓名',
    patientNameHint: '如 张*（支持通配符 * ?）',
    patientId: '患者 ID',
    accession: '检查号',
    studyDate: '检查日期',
    dateFrom: '开始日期',
    dateTo: '结束日期',
    today: '今天',
    last7: '近7天',
    last30: '近30天',
    anyDate: '不限',
    modality: '检查类型',
    institution: '机构',
    allInstitutions: '全部机构',
    sortBy: '排序',
    ascending: '升序',
    descending: '降序',
    colPatient: '患者姓名',
    colPatientId: '患者 ID',
    colSexAge: '性别/年龄',
    colDate: '检查日期',
    colModality: '类型',
    colDescription: '检查描述',
    colAccession: '检查号',
    colInstitution: '机构',
    colImages: '序列/图像',
    seriesImages: '{series} 序列 / {images} 图像',
    open: '打开',
    openStudy: '打开 {name} 的检查',
    loading: '正在查询…',
    empty: '没有符合条件的检查',
    emptyHint: '请调整或重置筛选条件。',
    error: '查询失败：{error}',
    forbidden: '此账户无权查看患者影像。',
    retry: '重试',
    pageOf: '第 {page} / {pages} 页',
    pageN: '第 {page} 页',
    total: '共 {total} 项检查',
    shown: '本页 {n} 项',
    prev: '上一页',
    next: '下一页',
    pageSize: '每页',
    pageOnlySort: '服务器不支持排序，仅对本页排序',
    results: '检查结果',
    issuer: '患者 ID 签发机构：{issuer}',
    adminTitle: '管理员账户不查看患者影像',
    adminHint: '按照系统管理员、安全管理员、审计管理员三员分立的要求，管理员账户无权访问患者数据。',
  },
  en: {
    pageTitle: 'Studies',
    search: 'Search',
    reset: 'Reset',
    filters: 'Filters',
    filtersActive: 'Filters ({n})',
    patientName: 'Patient name',
    patientNameHint: 'e.g. Zhang* (wildcards * ?)',
    patientId: 'Patient ID',
    accession: 'Accession no.',
    studyDate: 'Study date',
    dateFrom: 'From',
    dateTo: 'To',
    today: 'Today',
    last7: 'Last 7 days',
    last30: 'Last 30 days',
    anyDate: 'Any',
    modality: 'Modality',
    institution: 'Institution',
    allInstitutions: 'All institutions',
    sortBy: 'Sort by',
    ascending: 'ascending',
    descending: 'descending',
    colPatient: 'Patient',
    colPatientId: 'Patient ID',
    colSexAge: 'Sex/Age',
    colDate: 'Study date',
    colModality: 'Modality',
    colDescription: 'Description',
    colAccession: 'Accession',
    colInstitution: 'Institution',
    colImages: 'Series/Images',
    seriesImages: '{series} series / {images} images',
    open: 'Open',
    openStudy: 'Open the study of {name}',
    loading: 'Searching…',
    empty: 'No studies match',
    emptyHint: 'Change or reset the filters.',
    error: 'The search failed: {error}',
    forbidden: 'This account may not view patient images.',
    retry: 'Retry',
    pageOf: 'Page {page} of {pages}',
    pageN: 'Page {page}',
    total: '{total} studies',
    shown: '{n} on this page',
    prev: 'Previous',
    next: 'Next',
    pageSize: 'Per page',
    pageOnlySort: 'The server cannot sort: this page only is sorted',
    results: 'Studies found',
    issuer: 'Patient ID issued by {issuer}',
    adminTitle: 'Administrator accounts do not see patient images',
    adminHint: 'System, security and audit administrators are kept apart from patient data by design.',
  },
};
