import t from 'tap'
import { SessionRevocations } from '../lib/sessions/revocation.js'
import { fakeClock } from './helpers/clock.js'

/** A logger that keeps what it is told. */
function recordingLog () {
  const lines: Array<[string, string]> = []
  const log = {
    info: (msg: string) => lines.push(['info', msg]),
    warn: (msg: string) => lines.push(['warn', msg])
  }
  return { lines, log: log as never }
}

function revocations (options: Partial<ConstructorParameters<typeof SessionRevocations>[0]> = {}) {
  const { lines, log } = recordingLog()
  const set = new SessionRevocations({ failClosed: false, feedTolerance: 10, tokenLifetime: 900, fed: true, log, ...options })
  return { set, lines }
}

t.test('an ended session is kept for a token lifetime and a margin, then swept: memory stays bounded', async t => {
  const clock = fakeClock(t)
  const { set } = revocations()
  t.notOk(set.has('s1'), 'empty')
  set.revoked(['s1', 's2'], Date.now())
  t.ok(set.has('s1') && set.has('s2'))
  t.equal(set.keepMs, (900 + 60) * 1000, 'the lifetime and a minute')
  clock.advance(900 + 59)
  set.revoked(['s3'], Date.now())
  t.ok(set.has('s1'), 'kept while one of its tokens may live')
  clock.advance(2)
  set.revoked(['s4'], Date.now())
  t.notOk(set.has('s1'), 'swept once no token of it can be valid')
  t.equal(set.size, 2, 'only the recent ones stay')
})

t.test('heard again, later, an entry is kept from the later time; heard again earlier, nothing changes', async t => {
  const clock = fakeClock(t)
  const { set } = revocations({ tokenLifetime: 100 })
  const start = Date.now()
  set.revoked(['a'], start)
  set.revoked(['b'], start)
  clock.advance(120)
  set.revoked(['a'], Date.now())
  set.revoked(['a'], start)
  clock.advance(50)
  set.revoked(['c'], Date.now())
  t.notOk(set.has('b'), 'b went at its time')
  t.ok(set.has('a'), 'a is kept from when it was heard last')
})

t.test('an announcement too old to matter, or with no usable time, is handled', async t => {
  const { set } = revocations({ tokenLifetime: 60 })
  set.revoked(['old'], Date.now() - 3600_000)
  t.notOk(set.has('old'), 'every token of it expired: not kept')
  set.revoked(['odd'], Number.NaN)
  t.ok(set.has('odd'), 'no time: taken as now')
})

t.test('without a feed the instance records what it ends; with one, the feed does', async t => {
  const fed = revocations({ fed: true }).set
  fed.ended(['x'])
  t.notOk(fed.has('x'), 'the feed will tell')
  t.notOk(fed.recordsLocally)
  const alone = revocations({ fed: false }).set
  alone.ended(['x'])
  t.ok(alone.has('x'))
  t.ok(alone.recordsLocally)
})

t.test('the sweep empties the set with no new announcement', async t => {
  const { set } = revocations({ tokenLifetime: 1 })
  set.start()
  t.teardown(() => set.stop())
  set.revoked(['s', 't'], Date.now() - 60_000)
  t.equal(set.size, 2)
  set.sweep(Date.now() + 2000)
  t.equal(set.size, 0, 'every entry past its time goes')
  t.notOk(set.has('s'))
  set.stop()
  set.stop()
})

t.test('a gap keeps tokens issued before it unconfirmed until they expired, then clears on its own', async t => {
  const { set, lines } = revocations({ failClosed: true, tokenLifetime: 1 })
  set.start()
  t.teardown(() => set.stop())
  set.status('live')
  set.status('gap')
  t.ok(set.failing, 'fail closed after the gap')
  t.ok(set.unconfirmedBefore >= Date.now() / 1000, 'for tokens issued before it')
  t.equal(lines.filter(([level, msg]) => level === 'warn' && /missed/.test(msg)).length, 1)
  set.sweep()
  t.ok(set.failing, 'still unconfirmed while such a token may live')
  set.sweep(Date.now() + 2500)
  t.notOk(set.failing, 'cleared by the sweep once every such token expired')
  set.status('gap')
  set.status('gap')
  t.ok(set.failing, 'a new gap opens again')
})

t.test('failing only with failClosed; down counts from the first status, and once per outage', async t => {
  const served = revocations({ feedTolerance: 1 })
  served.set.start()
  t.teardown(() => served.set.stop())
  served.set.status('down')
  const end = Date.now() + 3000
  while (!served.lines.some(([level]) => level === 'warn') && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 20))
  t.notOk(served.set.failing, 'served')
  served.set.status('down')
  t.equal(served.lines.filter(([level]) => level === 'warn').length, 1, 'logged once')
  served.set.status('live')
  t.same(served.lines.map(([level]) => level), ['warn', 'info'])
})
