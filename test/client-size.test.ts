import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'
import t from 'tap'

// The client's budget: at most 4 KB minified and gzipped, as a page loads it. It is one module without
// imports, which is what lets the ES module build be one file that a page imports without a bundler.

const SOURCE = join(__dirname, '..', 'lib', 'client', 'index.ts')

t.test('one module: no import, no Node built-in', async t => {
  const source = readFileSync(SOURCE, 'utf8')
  t.notMatch(source, /^\s*import\s/m)
  t.notMatch(source, /\brequire\(|\bprocess\.|\bBuffer\b|node:/)
})

t.test('minified and gzipped, at most 4 KB', async t => {
  const result = await build({ entryPoints: [SOURCE], bundle: true, minify: true, format: 'esm', target: 'es2022', write: false, logLevel: 'silent' })
  const code = result.outputFiles[0].contents
  const gzipped = gzipSync(code, { level: 9 }).length
  t.comment(`client: ${code.length} bytes minified, ${gzipped} bytes gzipped`)
  t.ok(gzipped <= 4096, `${gzipped} bytes, budget 4096`)
  t.ok(gzipped > 1000, 'the measure measured the client')
})
