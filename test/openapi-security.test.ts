import fastifySwagger, { type SwaggerOptions } from '@fastify/swagger'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import fastifyRefreshAuth, { openApiBearerSecurity, openApiSecuritySchemes, type FastifyRefreshAuthOptions } from '../lib/index.js'
import { SECRET, verifyCredentials } from './helpers/app.js'

// Issue 13: registering the plugin must never make app.swagger() throw. @fastify/swagger looks up every
// scheme a route's `security` names in `components.securitySchemes` and throws a TypeError for one the
// document lacks; the plugin's routes may only name schemes the document declares.

type Requirement = Record<string, string[]>
interface Operation { security?: Requirement[], summary?: string, tags?: string[] }
interface Document {
  paths: Record<string, Record<string, Operation>>
  components?: { securitySchemes?: Record<string, unknown> }
  securityDefinitions?: Record<string, unknown>
}

const bearerOnly = { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } as const
const ownNames = { jwt: { type: 'http', scheme: 'bearer' }, session: { type: 'apiKey', in: 'cookie', name: 'sid' } } as const

const setups: Record<string, SwaggerOptions> = {
  'bearerAuth only': { openapi: { info: { title: 't', version: '1' }, components: { securitySchemes: bearerOnly } } },
  'its own scheme names': { openapi: { info: { title: 't', version: '1' }, components: { securitySchemes: ownNames } } },
  'no components at all': { openapi: { info: { title: 't', version: '1' } } },
  'components without schemes': { openapi: { info: { title: 't', version: '1' }, components: { schemas: {} } } },
  'the README recipe': { openapi: { info: { title: 't', version: '1' }, components: { securitySchemes: openApiSecuritySchemes() } } }
}

async function documented (t: Test, swagger: SwaggerOptions, options: Partial<FastifyRefreshAuthOptions> = {}, setup?: (app: FastifyInstance) => void) {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifySwagger, swagger)
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, ...options } as FastifyRefreshAuthOptions)
  if (setup === undefined) {
    app.get('/orders', { preHandler: app.authenticate }, async () => [])
    app.get('/admin', { preHandler: app.refreshAuth.requireRoles('admin') }, async () => 'ok')
    app.get('/public', async () => 'ok')
  } else {
    setup(app)
  }
  await app.ready()
  return app
}

function generate (t: Test, app: FastifyInstance): Document {
  let document: Document | undefined
  t.doesNotThrow(() => { document = app.swagger() as unknown as Document }, 'app.swagger() does not throw')
  t.doesNotThrow(() => app.swagger({ yaml: true }), 'nor does the YAML document')
  return document as Document
}

/** Every scheme named by an operation's security is declared by the document. */
function assertOnlyDeclared (t: Test, document: Document): void {
  const declared = new Set(Object.keys(document.components?.securitySchemes ?? document.securityDefinitions ?? {}))
  const undeclared = Object.entries(document.paths).flatMap(([path, methods]) =>
    Object.values(methods).flatMap(operation => (operation.security ?? []).flatMap(requirement =>
      Object.keys(requirement).filter(name => !declared.has(name)).map(name => `${path}: ${name}`))))
  t.same(undeclared, [], 'every operation names declared schemes only')
}

const security = (document: Document, path: string, method = 'post') => document.paths[path]?.[method]?.security

for (const [name, swagger] of Object.entries(setups)) {
  t.test(`the document never breaks: ${name}`, async t => {
    const document = generate(t, await documented(t, swagger))
    assertOnlyDeclared(t, document)
    t.same(Object.keys(document.paths).sort(), ['/admin', '/auth/events', '/auth/login', '/auth/logout', '/auth/refresh', '/orders', '/public'])
    t.same(security(document, '/auth/login'), [], 'login needs no credentials')
    const cookie = name === 'the README recipe' ? [{ refreshCookie: [] }] : []
    t.same(security(document, '/auth/refresh'), cookie, 'refresh: the cookie scheme only where declared')
    t.same(security(document, '/auth/logout'), cookie)
    const bearer = name === 'the README recipe' || name === 'bearerAuth only' ? [{ bearerAuth: [] }] : undefined
    t.same(security(document, '/orders', 'get'), bearer, 'protected routes: the bearer scheme only where declared')
    t.same(security(document, '/admin', 'get'), bearer)
    t.equal(security(document, '/public', 'get'), undefined)
  })
}

t.test("the body transport's alternatives keep what is declared", async t => {
  const both = generate(t, await documented(t, setups['bearerAuth only'], { refreshTokenTransport: 'both' }))
  t.same(security(both, '/auth/refresh'), [{}], 'the body alternative stays; the undeclared cookie one goes')
  const recipe = generate(t, await documented(t, setups['the README recipe'], { refreshTokenTransport: 'both' }))
  t.same(security(recipe, '/auth/refresh'), [{ refreshCookie: [] }, {}])
  const body = generate(t, await documented(t, setups['no components at all'], { refreshTokenTransport: 'body' }))
  t.same(security(body, '/auth/logout'), [])
})

t.test('Swagger 2 documents never break either', async t => {
  const swagger2 = generate(t, await documented(t, { swagger: { info: { title: 't', version: '1' } } }))
  assertOnlyDeclared(t, swagger2)
  t.same(security(swagger2, '/auth/refresh'), [])
  const declared = generate(t, await documented(t, {
    swagger: { info: { title: 't', version: '1' }, securityDefinitions: { bearerAuth: { type: 'apiKey', in: 'header', name: 'authorization' } } }
  }))
  t.same(security(declared, '/orders', 'get'), [{ bearerAuth: [] }])
  t.same(security(declared, '/auth/refresh'), [], 'Swagger 2 has no cookie scheme')
})

t.test('factory routes: a transform of the host runs first, the security is still filtered', async t => {
  const document = generate(t, await documented(t, setups['bearerAuth only'], { routes: false, cookie: { path: '/session' } }, app => {
    app.route(app.refreshAuth.loginRoute({ url: '/session' }))
    app.route(app.refreshAuth.refreshRoute({
      url: '/session/refresh',
      config: { swaggerTransform: ({ schema, url }) => ({ schema: { ...schema, summary: 'Renew' }, url }) }
    }))
    app.route(app.refreshAuth.logoutRoute({ url: '/session/logout', config: { swaggerTransform: false } }))
    app.route(app.refreshAuth.logoutRoute({
      url: '/session/logout-everywhere',
      config: { swaggerTransform: ({ schema, url }) => ({ schema: { ...schema, security: [{ bearerAuth: [] }] }, url }) }
    }))
    app.get('/orders', { preHandler: app.authenticate }, async () => [])
  }))
  assertOnlyDeclared(t, document)
  t.equal(document.paths['/session/refresh'].post.summary, 'Renew', "the host's transform ran")
  t.same(security(document, '/session/refresh'), [])
  t.same(security(document, '/session/logout'), [])
  t.same(security(document, '/session/logout-everywhere'), [{ bearerAuth: [] }], "a security the host's transform set is the host's")
  t.same(security(document, '/orders', 'get'), [{ bearerAuth: [] }])
})

t.test("a host's global transform still runs on every route but refresh and logout", async t => {
  const swagger = {
    ...setups['the README recipe'],
    transform: ({ schema, url }: { schema: object, url: string }) => ({ schema: { ...schema, tags: ['transformed'] }, url })
  } as SwaggerOptions
  const document = generate(t, await documented(t, swagger))
  for (const path of ['/auth/login', '/orders']) {
    const method = path === '/orders' ? 'get' : 'post'
    t.same(document.paths[path][method].tags, ['transformed'], path)
  }
  t.same(security(document, '/orders', 'get'), [{ bearerAuth: [] }], 'the bearer security survives a spreading transform')
  t.same(document.paths['/auth/refresh'].post.tags, ['auth'], 'refresh carries its own route-level transform')
})

t.test('a resource server has no routes to learn the document from: protected routes say it themselves', async t => {
  const resourceServer = { secret: undefined, routes: false, accessToken: { jwksUrl: 'http://127.0.0.1:9/jwks.json', jwksTimeout: 1 } } as const
  for (const [name, swagger] of [['none', setups['no components at all']], ['the recipe', setups['the README recipe']]] as const) {
    const document = generate(t, await documented(t, swagger, resourceServer, app => {
      app.get('/orders', { preHandler: app.authenticate }, async () => [])
      if (name === 'the recipe') app.get('/reports', { preHandler: app.authenticate, schema: { security: openApiBearerSecurity } }, async () => [])
    }))
    t.equal(security(document, '/orders', 'get'), undefined, `${name}: not marked, the plugin cannot see the document`)
    if (name === 'the recipe') t.same(security(document, '/reports', 'get'), [{ bearerAuth: [] }], 'marked by the host')
  }
})

t.test('a second document without the auth routes never inherits what the first declared', async t => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifySwagger, setups['the README recipe'])
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials })
  // registered after the plugin: it sees only the routes added from here on
  await app.register(fastifySwagger, { ...setups['no components at all'], decorator: 'internalDocs' } as SwaggerOptions)
  app.get('/orders', { preHandler: app.authenticate }, async () => [])
  await app.ready()
  const first = app.swagger() as unknown as Document
  t.same(security(first, '/orders', 'get'), [{ bearerAuth: [] }])
  await new Promise(resolve => setImmediate(resolve))
  const internal = (app as unknown as { internalDocs: () => Document }).internalDocs()
  t.same(Object.keys(internal.paths), ['/orders'])
  t.equal(security(internal, '/orders', 'get'), undefined)
})
