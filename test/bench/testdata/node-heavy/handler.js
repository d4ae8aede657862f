'use strict';

// The dependencies are there to weigh: the handler names their versions.
module.exports = async () => ({
  googleapis: require('googleapis/package.json').version,
  'aws-sdk': require('aws-sdk/package.json').version,
  '@mui/icons-material': require('@mui/icons-material/package.json').version,
  'monaco-editor': require('monaco-editor/package.json').version,
  typescript: require('typescript/package.json').version,
});
