import { execFileSync } from 'node:child_process'
import { join } from 'node:path'

// The built package as users load it (npm test builds dist/ before running the suite).
export const projectRoot = join(__dirname, '..', '..')

/** Runs `node <args>` from the project root and parses the JSON it prints. */
export function runNode (args: string[]): unknown {
  return JSON.parse(execFileSync(process.execPath, args, { cwd: projectRoot, encoding: 'utf8' }))
}
