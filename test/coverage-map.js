'use strict'
// Coverage is measured on the library source only (not on dist/, which the packaging test loads).
const { readdirSync } = require('node:fs')
const { join } = require('node:path')

function sources (dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap(entry =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [])
}

const files = sources('lib')
module.exports = () => files
