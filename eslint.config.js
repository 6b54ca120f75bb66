'use strict'

module.exports = require('neostandard')({
  ts: true,
  ignores: ['.docs-test/**', 'dist/**', 'node_modules/**', 'coverage/**', '.tap/**']
})
