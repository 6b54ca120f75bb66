import { join } from 'node:path'
import t from 'tap'
import ts from 'typescript'

// Every public export carries TSDoc with an @example: checked on the source, as editors show it.

t.setTimeout(120_000)

t.test('every export of the package entry has TSDoc with an @example', async t => {
  const entry = join(__dirname, '..', 'lib', 'index.ts')
  const program = ts.createProgram([entry], { module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16, noEmit: true })
  const checker = program.getTypeChecker()
  const source = program.getSourceFile(entry)
  const moduleSymbol = source === undefined ? undefined : checker.getSymbolAtLocation(source)
  t.ok(moduleSymbol, 'the entry module is found')
  const exported = checker.getExportsOfModule(moduleSymbol as ts.Symbol)
  t.ok(exported.length > 30, `${exported.length} exports`)

  const undocumented: string[] = []
  for (const symbol of exported) {
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol
    const declaration = target.declarations?.[0]
    const tags = declaration === undefined ? [] : ts.getJSDocTags(declaration)
    // `export default x` and `export { x }` share the declaration of x
    if (!tags.some(tag => tag.tagName.text === 'example')) undocumented.push(symbol.name)
  }
  t.same(undocumented, [], 'no export without an example')
})
