import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import t from 'tap'

// The one-way layering of the sources: no module imports the entry, and no import cycle, type-only
// imports included (they tie the declarations together just the same).

const lib = resolve(__dirname, '..', 'lib')

function sources (dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap(entry =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [])
}

const IMPORT = /^\s*(?:import|export)\b[^'"]*?from\s+'(\.[^']+)'|^\s*import\s+'(\.[^']+)'/gm

/** Each module's relative imports, as paths under lib/ ('stores/store.ts'). */
function importGraph (): Map<string, string[]> {
  const graph = new Map<string, string[]>()
  for (const file of sources(lib)) {
    const targets = [...readFileSync(file, 'utf8').matchAll(IMPORT)].map(match =>
      relative(lib, resolve(dirname(file), (match[1] ?? match[2]).replace(/\.js$/, '.ts'))))
    graph.set(relative(lib, file), targets)
  }
  return graph
}

/** The cycles of a graph, each as the path that closes it. */
function cycles (graph: Map<string, string[]>): string[][] {
  const found: string[][] = []
  const done = new Set<string>()
  function visit (node: string, path: string[]): void {
    const at = path.indexOf(node)
    if (at !== -1) {
      found.push([...path.slice(at), node])
      return
    }
    if (done.has(node)) return
    for (const next of graph.get(node) ?? []) visit(next, [...path, node])
    done.add(node)
  }
  for (const node of graph.keys()) visit(node, [])
  return found
}

t.test('no module under lib/ imports the entry', async t => {
  const graph = importGraph()
  t.ok(graph.size > 15, `${graph.size} modules read`)
  t.ok(graph.get('index.ts')?.includes('plugin.ts'), 'the import pattern finds imports')
  const intoEntry = [...graph].filter(([, targets]) => targets.includes('index.ts')).map(([file]) => file)
  t.same(intoEntry, [])
})

t.test('no import cycle', async t => {
  t.same(cycles(importGraph()), [])
  t.same(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']]])), [['a', 'b', 'c', 'a']], 'a cycle is found')
})
