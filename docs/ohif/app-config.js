/** OHIF Viewer 3.x configuration for Yunying (see docs/ohif.md).
 * Replaces dist/app-config.js of the prebuilt @ohif/app package. The viewer
 * talks to Yunying's DICOMweb on the same origin, with the browser's session
 * (sign in at Yunying's /login first; cookies are sent to the same host). */
window.config = {
  name: 'yunying',
  routerBasename: null,
  extensions: [],
  modes: [],
  customizationService: {},
  showStudyList: true,
  maxNumberOfWebWorkers: 3,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: true,
  showLoadingIndicator: true,
  strictZSpacingForVolumeViewport: true,
  groupEnabledModesFirst: true,
  investigationalUseDialog: { option: 'never' },
  // Yunying speaks HTTP/2 over TLS: many frame requests can be in flight.
  maxNumRequests: { interaction: 100, thumbnail: 10, prefetch: 50 },
  showErrorDetails: 'production',
  defaultDataSourceName: 'yunying',
  dataSources: [
    {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'yunying',
      configuration: {
        friendlyName: 'Yunying 云影',
        name: 'yunying',
        wadoUriRoot: window.location.origin + '/wado',
        qidoRoot: window.location.origin + '/dicom-web',
        wadoRoot: window.location.origin + '/dicom-web',
        qidoSupportsIncludeField: true,
        imageRendering: 'wadors',
        thumbnailRendering: 'wadors',
        enableStudyLazyLoad: true,
        supportsFuzzyMatching: true,
        supportsWildcard: true,
        staticWado: false,
        singlepart: 'bulkdata,video',
        bulkDataURI: { enabled: true },
        omitQuotationForMultipartRequest: true,
      },
    },
  ],
  httpErrorHandler: (error) => {
    // An expired or missing session: sign in again at Yunying's login page.
    if (error.status === 401 && window.YUNYING_LOGIN_URL) {
      window.location.href = window.YUNYING_LOGIN_URL + '?next=' + encodeURIComponent(window.location.href);
    }
  },
};
