// The viewer's UI texts, Chinese (default) and English, read with useT(viewerMessages).
import type { Messages } from '../i18n';

type Key =
  | 'loading' | 'noStudy' | 'loadFailed' | 'back' | 'series' | 'images'
  | 'toolWL' | 'toolPan' | 'toolZoom' | 'toolScroll' | 'toolLength' | 'toolAngle' | 'toolCobb'
  | 'toolEllipse' | 'toolRect' | 'toolProbe' | 'toolArrow' | 'reset' | 'presets' | 'presetDefault'
  | 'presetSoft' | 'presetLung' | 'presetBone' | 'presetBrain' | 'presetAbdomen'
  | 'layout' | 'sync' | 'sharpen' | 'strength' | 'cine' | 'play' | 'stop' | 'start' | 'end' | 'fps'
  | 'touchMode' | 'touchWL' | 'touchScroll' | 'tags' | 'report' | 'reportTitle' | 'reportNote'
  | 'measurements' | 'noMeasurements' | 'delete' | 'clearAll' | 'filter' | 'close'
  | 'patient' | 'patientId' | 'studyDate' | 'studyDesc' | 'accession' | 'modalities' | 'institution'
  | 'mpr' | 'vr3d' | 'stack' | 'slab' | 'blend' | 'blendNone' | 'mip' | 'minip' | 'crosshairs'
  | 'spine' | 'spineStart' | 'spineHint' | 'rename' | 'vrPreset' | 'crop'
  | 'noWebgl' | 'loadingVolume' | 'more' | 'language' | 'enlargeHint' | 'image' | 'zoom' | 'thickness' | 'location'
  | 'arrowPrompt' | 'panels' | 'tools' | 'axial' | 'sagittal' | 'coronal' | 'volume3d' | 'presetTissue'
  | 'bone' | 'softTissue' | 'lung' | 'vessels' | 'notVolume' | 'retrieving';

export const viewerMessages: Messages<Key> = {
  'zh-CN': {
    loading: '正在加载…', noStudy: '未指定检查 (StudyInstanceUIDs)', loadFailed: '加载失败', back: '返回列表',
    series: '序列', images: '幅',
    toolWL: '窗宽窗位', toolPan: '平移', toolZoom: '缩放', toolScroll: '翻页', toolLength: '长度',
    toolAngle: '角度', toolCobb: 'Cobb角', toolEllipse: '椭圆ROI', toolRect: '矩形ROI', toolProbe: 'CT值',
    toolArrow: '箭头标注', reset: '复位', presets: '窗位预设', presetDefault: '默认',
    presetSoft: '软组织', presetLung: '肺窗', presetBone: '骨窗', presetBrain: '脑窗', presetAbdomen: '腹部',
    layout: '布局', sync: '同步', sharpen: '锐化', strength: '强度', cine: '电影', play: '播放', stop: '停止',
    start: '起始', end: '结束', fps: '帧/秒', touchMode: '单指', touchWL: '调窗', touchScroll: '翻页',
    tags: 'DICOM标签', report: '报告', reportTitle: '报告 (待开发)',
    reportNote: '报告书写功能正在开发中，此处将显示结构化报告。',
    measurements: '测量', noMeasurements: '暂无测量', delete: '删除', clearAll: '全部清除', filter: '筛选',
    close: '关闭', patient: '患者', patientId: '患者ID', studyDate: '检查日期', studyDesc: '检查描述',
    accession: '检查号', modalities: '设备类型', institution: '机构',
    mpr: 'MPR', vr3d: '三维', stack: '二维', slab: '层厚(mm)', blend: '投影', blendNone: '无', mip: 'MIP',
    minip: 'MinIP', crosshairs: '十字线', spine: '脊柱标注', spineStart: '起始椎体',
    spineHint: '在矢状位依次点击椎体', rename: '重命名', vrPreset: '组织预设', crop: '裁剪',
    noWebgl: '此设备不支持三维/MPR渲染 ({reason})，已切换为二维浏览。', loadingVolume: '正在加载体数据…',
    more: '更多', language: 'EN', enlargeHint: '双击放大/还原', image: '图像', zoom: '缩放',
    thickness: '层厚', location: '位置', arrowPrompt: '输入标注文字', panels: '面板', tools: '工具',
    axial: '轴位', sagittal: '矢状位', coronal: '冠状位', volume3d: '三维', presetTissue: '组织',
    bone: '骨骼', softTissue: '软组织', lung: '肺', vessels: '血管',
    notVolume: '当前序列不能重建 MPR/三维 (需要同方向、多层的断层序列)。',
    retrieving: '部分影像正在从归档存储中取回，约 {seconds} 秒后自动重试…',
  },
  en: {
    loading: 'Loading…', noStudy: 'No study given (StudyInstanceUIDs)', loadFailed: 'Loading failed', back: 'Study list',
    series: 'Series', images: 'img',
    toolWL: 'Window/Level', toolPan: 'Pan', toolZoom: 'Zoom', toolScroll: 'Scroll', toolLength: 'Length',
    toolAngle: 'Angle', toolCobb: 'Cobb angle', toolEllipse: 'Ellipse ROI', toolRect: 'Rectangle ROI', toolProbe: 'Probe',
    toolArrow: 'Arrow', reset: 'Reset', presets: 'W/L presets', presetDefault: 'Default',
    presetSoft: 'Soft tissue', presetLung: 'Lung', presetBone: 'Bone', presetBrain: 'Brain', presetAbdomen: 'Abdomen',
    layout: 'Layout', sync: 'Sync', sharpen: 'Sharpen', strength: 'Strength', cine: 'Cine', play: 'Play', stop: 'Stop',
    start: 'Start', end: 'End', fps: 'fps', touchMode: 'One finger', touchWL: 'W/L', touchScroll: 'Scroll',
    tags: 'DICOM tags', report: 'Report', reportTitle: 'Report (in development)',
    reportNote: 'Report writing is being developed; the structured report will appear here.',
    measurements: 'Measurements', noMeasurements: 'No measurements', delete: 'Delete', clearAll: 'Clear all', filter: 'Filter',
    close: 'Close', patient: 'Patient', patientId: 'Patient ID', studyDate: 'Study date', studyDesc: 'Description',
    accession: 'Accession', modalities: 'Modalities', institution: 'Institution',
    mpr: 'MPR', vr3d: '3D', stack: '2D', slab: 'Slab (mm)', blend: 'Projection', blendNone: 'None', mip: 'MIP',
    minip: 'MinIP', crosshairs: 'Crosshairs', spine: 'Spine labels', spineStart: 'Start at',
    spineHint: 'Click the vertebrae in turn on the sagittal view', rename: 'Rename', vrPreset: 'Tissue preset', crop: 'Crop',
    noWebgl: 'This device cannot render MPR/3D ({reason}); showing 2D images instead.', loadingVolume: 'Loading volume…',
    more: 'More', language: '中文', enlargeHint: 'Double-click to enlarge/restore', image: 'Im', zoom: 'Zoom',
    thickness: 'Thk', location: 'Loc', arrowPrompt: 'Annotation text', panels: 'Panels', tools: 'Tools',
    axial: 'Axial', sagittal: 'Sagittal', coronal: 'Coronal', volume3d: '3D', presetTissue: 'Tissue',
    bone: 'Bone', softTissue: 'Soft tissue', lung: 'Lung', vessels: 'Vessels',
    notVolume: 'This series cannot be reconstructed for MPR/3D (it needs parallel cross-sections).',
    retrieving: 'Some images are being retrieved from archive storage; trying again in about {seconds} s…',
  },
};

export type ViewerMessageKey = Key;
