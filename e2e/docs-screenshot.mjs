// Makes docs/demo.png, the README's picture of the demo page: `npm run build && node e2e/docs-screenshot.mjs`.
import { fileURLToPath } from 'node:url'
import { launchChromium, newPage, signIn, startDemo, waitForStatus } from './helpers.mjs'

const cleanups = []
const owner = { teardown: (cleanup) => cleanups.push(cleanup) }
try {
  const demo = await startDemo(owner, { ACCESS_TOKEN_TTL: '30' })
  const page = await newPage(await launchChromium(owner), owner)
  await page.goto(demo.url)
  await signIn(page)
  await waitForStatus(page, 'Signed in as Alice Liddell')
  await page.click('#call-api')
  await page.locator('#api-result').filter({ hasText: 'HTTP 200' }).waitFor()
  await page.click('#refresh-now')
  await page.locator('#refresh-count').filter({ hasText: '1' }).waitFor()
  await page.setViewportSize({ width: 900, height: 740 })
  await page.screenshot({ path: fileURLToPath(new URL('../docs/demo.png', import.meta.url)), fullPage: true })
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup()
}
