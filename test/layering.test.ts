import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import t from 'tap'

// The one-way layering of the sources: each module imports only from its own layer or the layers below
// it, no module imports the entry, and there is no import cycle, type-only imports included (they tie the
// declarations together just the same).

/**
 * The layers, top to bottom, each a list of folders (`http/`) or files under lib/. A module belongs to the
 * first layer that names it; one no layer names fails the test, so a new folder takes a place here.
 */
const LAYERS: readonly (readonly string[])[] = [
  // the entries: the package, the store authors' subpath, the plugin that wires the rest, the battery, the browser client
  ['index.ts', 'store.ts', 'decorators.ts', 'plugin.ts', 'testing/', 'client/'],
  // routes, the refresh transport, authenticate and the guards
  ['http/'],
  // the session rules and the revocations this instance knows of
  ['sessions/'],
  // what logins, refreshes, logouts and store calls report to OpenTelemetry
  ['telemetry/'],
  // options resolved into the groups each part receives, and the server-role decision
  ['options/'],
  // keys, the two token codecs, the verified-token cache
  ['tokens/'],
  // persistence
  ['stores/'],
  // the session rules every store shares, pure functions over the contract's records
  ['sessions/decisions.ts'],
  // the store contract: types, and what a store's answers may be
  ['stores/store.ts'],
  // what every layer may use
  ['errors.ts', 'host-call.ts', 'audit.ts', 'types.ts']
]

// A file named in a layer wins over its folder's layer.
function layerOf (module: string): number {
  const named = LAYERS.findIndex(layer => layer.includes(module))
  return named !== -1 ? named : LAYERS.findIndex(layer => layer.some(entry => entry.endsWith('/') && module.startsWith(entry)))
}

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

t.test('every module has a layer, and none imports from a layer above its own', async t => {
  const graph = importGraph()
  t.same([...graph.keys()].filter(module => layerOf(module) === -1), [], 'modules outside every layer')
  const upward = [...graph].flatMap(([module, targets]) =>
    targets.filter(target => layerOf(target) < layerOf(module)).map(target => `${module} -> ${target}`))
  t.same(upward, [])
  t.equal(layerOf('stores/memory.ts') > layerOf('sessions/policy.ts'), true, 'a folder takes its layer')
  t.equal(layerOf('sessions/decisions.ts') > layerOf('stores/memory.ts'), true, 'a file named in a layer takes that one')
  t.equal(layerOf('nowhere.ts'), -1, 'an unlisted module has no layer')
})
