'use strict'
// Holds one GET /auth/events stream per access token, for bench/events.mjs: the tokens come as one JSON line
// on stdin, "open" goes to stdout once every stream answered, and the next line on stdin ends the process.
const http = require('node:http')

const url = process.argv[2]
const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity })
let input = ''
let started = false

process.stdin.on('data', (chunk) => {
  input += chunk
  if (!input.endsWith('\n')) return
  if (started) process.exit(0)
  started = true
  const tokens = JSON.parse(input)
  let open = 0
  for (const token of tokens) {
    http.get(`${url}/auth/events`, { agent, headers: { authorization: `Bearer ${token}` } }, (response) => {
      response.once('data', () => { if (++open === tokens.length) process.stdout.write('open\n') })
    })
  }
})
