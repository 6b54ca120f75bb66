import { join, sep } from 'node:path'
import t from 'tap'
import ts from 'typescript'

// Every public export carries TSDoc, and each one a user calls or configures an @example: checked on
// the source, as editors show it. Calls or configures: a value that can be called or constructed; a
// type with a call signature or methods of its own (hooks, factories, the API objects, a store to
// implement); an options type (`…Options`, `…Overrides`) or the type of a plugin option; an empty
// interface, which is there to be augmented. Types that are only read (claims, events, results) need
// no example that would restate them.

const lib = join(__dirname, '..', 'lib')
const entry = join(lib, 'index.ts')
const program = ts.createProgram([entry], { module: ts.ModuleKind.Node16, moduleResolution: ts.ModuleResolutionKind.Node16, noEmit: true })
const checker = program.getTypeChecker()

function isOurs (declaration: ts.Declaration): boolean {
  return declaration.getSourceFile().fileName.startsWith(lib.split(sep).join('/'))
}

function isCallable (type: ts.Type): boolean {
  return type.getCallSignatures().length > 0 || type.getConstructSignatures().length > 0
}

/** Why a user calls or configures this export, or null when it is only read. */
function callsOrConfigures (name: string, symbol: ts.Symbol, declaration: ts.Declaration): string | null {
  if (symbol.flags & ts.SymbolFlags.Value) {
    return isCallable(checker.getTypeOfSymbolAtLocation(symbol, declaration)) ? 'called or constructed' : null
  }
  if (/(Options|Overrides)$/.test(name)) return 'an options type'
  if (ts.isInterfaceDeclaration(declaration) && declaration.members.length === 0 && declaration.heritageClauses === undefined) {
    return 'augmented'
  }
  const type = checker.getDeclaredTypeOfSymbol(symbol)
  if (isCallable(type)) return 'a function type'
  const methods = type.getProperties().filter(property => {
    const own = property.declarations?.filter(isOurs) ?? []
    return own.length > 0 && isCallable(checker.getTypeOfSymbolAtLocation(property, own[0]))
  })
  return methods.length > 0 ? `has methods (${methods.map(m => m.name).join(', ')})` : null
}

/**
 * The exported types a plugin option is written as (`store: SessionStore`, `keys: AccessTokenKey[]`,
 * `algorithm: OneOf<AccessTokenAlgorithm>`): through nested objects, arrays, unions and the type
 * arguments of helpers that are not exported, but not into function types or exported generics.
 */
function optionTypes (options: ts.InterfaceDeclaration, exported: ReadonlySet<string>): Set<string> {
  const found = new Set<string>()
  function visit (node: ts.Node): void {
    if (ts.isTypeReferenceNode(node)) {
      const name = node.typeName.getText()
      if (exported.has(name)) found.add(name)
      else node.typeArguments?.forEach(visit)
    } else if (ts.isTypeLiteralNode(node) || ts.isPropertySignature(node) || ts.isArrayTypeNode(node) ||
        ts.isUnionTypeNode(node) || ts.isParenthesizedTypeNode(node)) {
      ts.forEachChild(node, visit)
    }
  }
  options.members.forEach(visit)
  return found
}

function exportsOfEntry () {
  const source = program.getSourceFile(entry)
  const moduleSymbol = source === undefined ? undefined : checker.getSymbolAtLocation(source)
  if (moduleSymbol === undefined) throw new Error('the entry module is not found')
  const symbols = checker.getExportsOfModule(moduleSymbol)
  const options = checker.getAliasedSymbol(symbols.find(symbol => symbol.name === 'FastifyRefreshAuthOptions') as ts.Symbol)
  const optionTypeNames = optionTypes(options.declarations?.[0] as ts.InterfaceDeclaration, new Set(symbols.map(symbol => symbol.name)))
  return symbols.map(symbol => {
    const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol
    // `export default x` and `export { x }` share the declaration of x
    const declaration = target.declarations?.[0]
    if (declaration === undefined) throw new Error(`${symbol.name} has no declaration`)
    const comments = ts.getJSDocCommentsAndTags(declaration).filter(ts.isJSDoc)
    const summary = comments.map(doc => ts.getTextOfJSDocComment(doc.comment) ?? '').join('').trim()
    const hasExample = ts.getJSDocTags(declaration).some(tag => tag.tagName.text === 'example')
    const reason = optionTypeNames.has(symbol.name) ? 'the type of a plugin option' : callsOrConfigures(symbol.name, target, declaration)
    return { name: symbol.name, summary, hasExample, reason }
  })
}

t.test('every export of the package entry has TSDoc', async t => {
  const exported = exportsOfEntry()
  t.ok(exported.length > 30, `${exported.length} exports`)
  t.same(exported.filter(e => e.summary === '').map(e => e.name), [], 'no export without a description')
})

t.test('each export a user calls or configures has an @example', async t => {
  const exported = exportsOfEntry()
  const needing = exported.filter(e => e.reason !== null)
  // the rule sorts the exports it knows the way a reader would
  const reasons = Object.fromEntries(exported.map(e => [e.name, e.reason]))
  t.match(reasons, {
    fastifyRefreshAuth: 'called or constructed',
    MemoryStore: 'called or constructed',
    openApiSecuritySchemes: 'called or constructed',
    FastifyRefreshAuthOptions: 'an options type',
    LoginUser: 'augmented',
    RefreshAuthUser: 'augmented',
    AuthenticateHook: 'a function type',
    SessionStore: 'the type of a plugin option',
    AccessTokenKey: 'the type of a plugin option',
    AccessTokenAlgorithm: 'the type of a plugin option',
    RouteOverrides: 'an options type',
    RefreshAuthApi: /^has methods/,
    RegisteredClaims: null,
    SessionInfo: null,
    LogoutEvent: null,
    BEARER_SCHEME: null
  })
  t.same(needing.filter(e => !e.hasExample).map(e => `${e.name} (${String(e.reason)})`), [], 'no such export without an example')
})
