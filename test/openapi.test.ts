import fastifyAuth from '@fastify/auth'
import fastifySwagger from '@fastify/swagger'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import fastifyRefreshAuth, { openApiBearerSecurity, openApiSecuritySchemes, type FastifyRefreshAuthOptions } from '../lib/index.js'
import { SECRET, USER, login, verifyCredentials } from './helpers/app.js'

interface OpenApiOperation {
  tags?: string[]
  summary?: string
  security?: Array<Record<string, string[]>>
  parameters?: Array<{ in: string, name: string, required?: boolean, schema?: { type?: string } }>
  requestBody?: { content: Record<string, { schema: { type?: string, properties?: Record<string, unknown> } }> }
  responses: Record<string, { content?: Record<string, { schema: { properties?: Record<string, unknown> } }> }>
}

interface OpenApiDocument {
  openapi: string
  paths: Record<string, Record<string, OpenApiOperation>>
  components: { securitySchemes: Record<string, Record<string, string>> }
}

async function documentedApp (t: Test, options: Partial<FastifyRefreshAuthOptions> = {}, setup?: (app: FastifyInstance) => void) {
  const app = Fastify()
  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'test', version: '1.0.0' },
      components: { securitySchemes: openApiSecuritySchemes({ cookieName: options.cookie?.name, dpop: options.dpop !== undefined && options.dpop !== false }) }
    }
  })
  await app.register(fastifyRefreshAuth, { secret: SECRET, verifyCredentials, ...options })
  setup?.(app)
  await app.ready()
  t.teardown(() => app.close())
  return { app, document: app.swagger() as unknown as OpenApiDocument }
}

t.test('the OpenAPI document lists the routes, their schemas and the security schemes', async t => {
  const { document } = await documentedApp(t)
  t.match(document.openapi, /^3\./)
  t.same(Object.keys(document.paths).sort(), ['/auth/events', '/auth/login', '/auth/logout', '/auth/refresh'])
  t.same(document.paths['/auth/events'].get.security, [{ bearerAuth: [] }], 'the events stream takes the access token')

  t.same(document.components.securitySchemes.bearerAuth, {
    type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'Access token from the login or refresh route'
  })
  t.match(document.components.securitySchemes.refreshCookie, { type: 'apiKey', in: 'cookie', name: '__Secure-refresh_token' })

  const login = document.paths['/auth/login'].post
  t.same(login.tags, ['auth'])
  t.equal(login.summary, 'Sign in')
  t.same(login.security, [], 'login needs no credentials of ours')
  t.equal(login.requestBody?.content['application/json'].schema.type, 'object')
  t.same(Object.keys(login.responses['200'].content?.['application/json'].schema.properties ?? {}).sort(),
    ['access_token', 'expires_in', 'token_type'])
  t.ok(login.responses['4XX'] ?? login.responses['4xx'], 'errors are documented')

  const refresh = document.paths['/auth/refresh'].post
  t.same(refresh.security, [{ refreshCookie: [] }])
  t.equal(refresh.requestBody, undefined, 'a cookie-only refresh takes no body')
  t.same(document.paths['/auth/logout'].post.security, [{ refreshCookie: [] }])
  t.ok(document.paths['/auth/logout'].post.responses['204'])
  t.same(Object.keys(document.paths['/auth/logout'].post.requestBody?.content['application/json'].schema.properties ?? {}).sort(),
    ['all', 'others'], 'logout documents what it may sign out')
})

t.test('with dpop: the DPoP scheme beside Bearer on protected routes, and the DPoP proof header on the auth routes', async t => {
  const setup = (app: FastifyInstance) => { app.get('/private', { preHandler: app.authenticate }, async () => ({})) }
  const { app, document } = await documentedApp(t, { dpop: true }, setup)
  t.same(document.components.securitySchemes.dpopAuth, {
    type: 'http',
    scheme: 'dpop',
    bearerFormat: 'JWT',
    description: 'DPoP-bound access token: `Authorization: DPoP <token>` with a `DPoP` proof header from its key (RFC 9449)'
  })
  const either = [{ bearerAuth: [] }, { dpopAuth: [] }]
  t.same(document.paths['/private'].get.security, either, 'a protected route takes either')
  t.same(document.paths['/auth/events'].get.security, either, 'so does the events stream')
  for (const path of ['/auth/login', '/auth/refresh', '/auth/logout']) {
    const header = document.paths[path].post.parameters?.find(parameter => parameter.in === 'header' && parameter.name === 'dpop')
    t.match(header, { required: false, schema: { type: 'string' } }, `${path}: the DPoP header is documented, optional`)
  }
  t.equal((await login(app)).response.json().token_type, 'Bearer', 'the documented header stays optional: a login without a proof is Bearer as before')

  const { document: plain } = await documentedApp(t, {}, setup)
  t.equal(plain.components.securitySchemes.dpopAuth, undefined, 'without dpop: no DPoP scheme')
  t.same(plain.paths['/private'].get.security, [{ bearerAuth: [] }])
  t.equal(plain.paths['/auth/login'].post.parameters?.find(parameter => parameter.name === 'dpop'), undefined, 'nor header')
})

t.test('the devices routes are documented: Bearer-protected, their path parameter, the listed fields', async t => {
  const { document } = await documentedApp(t, { routes: { sessions: true } })
  t.same(Object.keys(document.paths).sort(),
    ['/auth/events', '/auth/login', '/auth/logout', '/auth/refresh', '/auth/sessions', '/auth/sessions/{sessionId}'])
  const list = document.paths['/auth/sessions'].get
  t.same(list.tags, ['auth'])
  t.same(list.security, [{ bearerAuth: [] }], 'the access token authenticates it')
  const sessions = list.responses['200'].content?.['application/json'].schema.properties?.sessions as { items: { properties: Record<string, unknown> } }
  t.same(Object.keys(sessions.items.properties).sort(), ['createdAt', 'current', 'device', 'ip', 'lastSeenAt', 'sessionId', 'userAgent'])
  const end = document.paths['/auth/sessions/{sessionId}'].delete as OpenApiOperation & { parameters: Array<{ name: string, in: string, required: boolean }> }
  t.same(end.security, [{ bearerAuth: [] }])
  t.match(end.parameters, [{ name: 'sessionId', in: 'path', required: true }])
  t.ok(end.responses['204'], 'ended')
  t.ok(end.responses['4XX'] ?? end.responses['4xx'], 'errors are documented')
})

t.test('routes protected by app.authenticate or a guard are marked with the bearer scheme; others are not', async t => {
  const { document } = await documentedApp(t, {}, app => {
    app.register(fastifyAuth)
    app.after(() => {
      app.get('/private', { preHandler: app.authenticate }, async () => 'ok')
      app.get('/on-request', { onRequest: [app.authenticate] }, async () => 'ok')
      app.get('/admin', { preHandler: app.refreshAuth.requireRoles('admin') }, async () => 'ok')
      app.get('/own-security', { preHandler: app.authenticate, schema: { security: [] } }, async () => 'ok')
      app.get('/composed', { preHandler: app.auth([app.authenticate]), schema: { security: openApiBearerSecurity } }, async () => 'ok')
      app.get('/public', { preHandler: async () => {} }, async () => 'ok')
      app.register(async child => {
        child.get('/child', { preHandler: app.authenticate, schema: { tags: ['child'] } }, async () => 'ok')
      })
    })
  })
  for (const path of ['/private', '/on-request', '/admin', '/composed', '/child']) {
    t.same(document.paths[path].get.security, [{ bearerAuth: [] }], `${path} is Bearer-protected`)
  }
  t.same(document.paths['/child'].get.tags, ['child'], 'the host schema is kept')
  t.same(document.paths['/own-security'].get.security, [], 'a security of the host wins')
  t.equal(document.paths['/public'].get.security, undefined)
})

t.test('marking a route changes its documentation only, and never a schema the host shares', async t => {
  const shared = { tags: ['shared'] }
  const { app, document } = await documentedApp(t, {}, app => {
    app.get('/private', { preHandler: app.authenticate, schema: shared }, async () => 'ok')
    app.get('/open', { schema: shared }, async () => 'ok')
  })
  t.equal(document.paths['/open'].get.security, undefined)
  t.same(Object.keys(shared), ['tags'], 'the shared schema object got no security')
  t.equal((await app.inject('/private')).statusCode, 401)
  t.equal((await app.inject('/open')).statusCode, 200)
})

t.test('the host login body schema replaces ours and its responses merge with ours', async t => {
  const loginBody = {
    type: 'object',
    required: ['username', 'password'],
    properties: { username: { type: 'string', maxLength: 64 }, password: { type: 'string', maxLength: 256 } },
    additionalProperties: false
  }
  const { app, document } = await documentedApp(t, { routes: false }, app => {
    app.route(app.refreshAuth.loginRoute({
      schema: { body: loginBody, tags: ['accounts'], response: { 429: { type: 'object', properties: { message: { type: 'string' } } } } }
    }))
  })
  const login = document.paths['/auth/login'].post
  t.same(login.tags, ['accounts'], 'host metadata wins')
  t.equal(login.summary, 'Sign in', 'ours stays where the host said nothing')
  t.same(Object.keys(login.requestBody?.content['application/json'].schema.properties ?? {}).sort(), ['password', 'username'])
  t.ok(login.responses['200'], 'our token response is kept')
  t.ok(login.responses['429'], 'the host response is added')

  const invalid = await app.inject({ method: 'POST', url: '/auth/login', payload: { username: 'alice' } })
  t.equal(invalid.statusCode, 400, 'the host schema validates the body')
  t.equal(invalid.json().code, 'FST_ERR_VALIDATION')
  const { response } = await login200(app)
  t.same(Object.keys(response.json()).sort(), ['access_token', 'expires_in', 'token_type'], 'our response schema still serialises')
})

async function login200 (app: FastifyInstance) {
  return login(app)
}

t.test('the default login schema refuses a body that is not an object', async t => {
  const { app } = await documentedApp(t)
  const response = await app.inject({ method: 'POST', url: '/auth/login', payload: '"alice"', headers: { 'content-type': 'application/json' } })
  t.equal(response.statusCode, 400)
  t.equal(response.json().code, 'FST_ERR_VALIDATION')
  const ok = await app.inject({ method: 'POST', url: '/auth/login', payload: USER })
  t.equal(ok.statusCode, 200)
})

t.test('the body transport documents refresh_token in bodies and responses', async t => {
  const { document } = await documentedApp(t, { refreshTokenTransport: 'both', cookie: { name: 'rt', secure: true } })
  t.match(document.components.securitySchemes.refreshCookie, { name: 'rt' })
  const refresh = document.paths['/auth/refresh'].post
  t.same(refresh.security, [{ refreshCookie: [] }, {}], 'the cookie or the body')
  t.ok(refresh.requestBody?.content['application/json'].schema.properties?.refresh_token)
  t.ok(refresh.responses['200'].content?.['application/json'].schema.properties?.refresh_token)

  const bodyOnly = await documentedApp(t, { refreshTokenTransport: 'body' })
  t.same(bodyOnly.document.paths['/auth/logout'].post.security, [])
})
