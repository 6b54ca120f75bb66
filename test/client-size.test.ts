import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'
import t from 'tap'

// The client's budget: at most 4 KB minified and gzipped, as a page loads it. It is one module without static
// imports, which is what lets the ES module build be one file that a page imports without a bundler. DPoP is
// its sibling `./dpop.js`, loaded only by a client that asks for it: outside the budget, measured on its own.

const CLIENT = join(__dirname, '..', 'lib', 'client')
const SOURCE = join(CLIENT, 'index.ts')
const DPOP = join(CLIENT, 'dpop.ts')

async function minifiedAndGzipped (entry: string): Promise<{ minified: number, gzipped: number }> {
  // './dpop.js' stays a file of its own, as the browser loads it (a bundler would inline it)
  const result = await build({ entryPoints: [entry], bundle: true, minify: true, format: 'esm', target: 'es2022', write: false, logLevel: 'silent', external: ['./dpop.js'] })
  const code = result.outputFiles[0].contents
  return { minified: code.length, gzipped: gzipSync(code, { level: 9 }).length }
}

t.test('one module: no static import, no Node built-in; DPoP only by a relative dynamic import', async t => {
  for (const file of [SOURCE, DPOP]) {
    const source = readFileSync(file, 'utf8')
    t.notMatch(source, /^\s*import\s(?!type\s)/m, `${file}: type imports only`)
    t.notMatch(source, /\brequire\(|\bprocess\.|\bBuffer\b|node:/)
  }
  t.same([...readFileSync(SOURCE, 'utf8').matchAll(/\bimport\(([^)]*)\)/g)].map(match => match[1]), ["'./dpop.js'"])
})

t.test('minified and gzipped, the client at most 4 KB', async t => {
  const { minified, gzipped } = await minifiedAndGzipped(SOURCE)
  t.comment(`client: ${minified} bytes minified, ${gzipped} bytes gzipped`)
  t.ok(gzipped <= 4096, `${gzipped} bytes, budget 4096`)
  t.ok(gzipped > 1000, 'the measure measured the client')
})

t.test('minified and gzipped, the DPoP entry at most 1.5 KB', async t => {
  const { minified, gzipped } = await minifiedAndGzipped(DPOP)
  t.comment(`client/dpop: ${minified} bytes minified, ${gzipped} bytes gzipped`)
  t.ok(gzipped <= 1536, `${gzipped} bytes, budget 1536`)
  t.ok(gzipped > 500, 'the measure measured the DPoP entry')
})
