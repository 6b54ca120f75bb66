import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'

// Every name lib/index.ts exports is in the README's exports table, and the table names nothing it does not export.
const root = join(__dirname, '..')
const index = readFileSync(join(root, 'lib', 'index.ts'), 'utf8')
const exported = new Set([...index.matchAll(/^export (?:type )?\{([^}]*)\}/gm)]
  .flatMap(match => match[1].split(','))
  .map(name => name.trim().replace(/^type\s+/, '').split(/\s+as\s+/).pop() ?? '')
  .filter(name => name !== ''))

const readme = readFileSync(join(root, 'README.md'), 'utf8')
const section = readme.slice(readme.indexOf('### Exports'), readme.indexOf('## Stores'))
const rows = section.split('\n').filter(line => line.startsWith('| ') && !line.includes('fastify-refresh-auth/'))
const names = (text: string): string[] => [...text.matchAll(/`([A-Za-z_]+)/g)].map(match => match[1])
const mentioned = new Set(rows.flatMap(names))
const listed = new Set(rows.flatMap(row => names(row.split(' | ')[0])))

t.test('every export of lib/index.ts is in the README exports table', async t => {
  t.ok(exported.size > 40, `${exported.size} exports read`)
  t.same([...exported].filter(name => !mentioned.has(name)), [], 'exported but not listed')
  t.same([...listed].filter(name => !exported.has(name)), [], 'listed but not exported')
})
