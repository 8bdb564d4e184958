// node-postgres through pgmux with read/write routing on (issue 4): a primary and a streaming
// replica; reads go to the replica, writes to the primary, and no client ever misses its own
// write or sees an error.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useEnvironment, parallel, VIA_PGMUX } from './harness.mjs'

const env = useEnvironment({ replica: true })

async function waitFor(fn, ms) {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await fn()) return true
    await new Promise((r) => setTimeout(r, 50))
  }
  return false
}

test('reads reach the replica, writes the primary, and each client reads its own writes', {
  timeout: 60_000,
  skip: VIA_PGMUX ? false : 'routing needs pgmux',
}, async () => {
  const primary = Number(env.cluster.PRIMARY_PORT)
  const replica = Number(env.cluster.REPLICA_PORT)
  await env.adminQuery('CREATE TABLE IF NOT EXISTS routed_node (id int PRIMARY KEY, v text); GRANT ALL ON routed_node TO app')
  const pool = env.pool({ max: 40 })
  // Health checks need a round before reads can leave the primary.
  assert.ok(await waitFor(async () => (await pool.query('SELECT inet_server_port() AS p')).rows[0].p === replica, 10_000),
    'reads never reached the replica')
  await parallel(100, async (i) => {
    const c = await pool.connect()
    try {
      const w = await c.query('INSERT INTO routed_node VALUES ($1, $2) RETURNING inet_server_port() AS p', [i, `v${i}`])
      assert.equal(w.rows[0].p, primary)
      // Read-your-writes: the row is there at once, wherever the read runs.
      const r = await c.query({ name: 'own-row', text: 'SELECT v, inet_server_port() AS p FROM routed_node WHERE id = $1', values: [i] })
      assert.equal(r.rows.length, 1, `client ${i} missed its own write`)
      assert.equal(r.rows[0].v, `v${i}`)
    } finally {
      c.release()
    }
  })
  const count = await pool.query('SELECT count(*)::int AS n FROM routed_node')
  assert.equal(count.rows[0].n >= 100, true)
  await pool.end()
  // Clients that did not write read from the replica at once.
  const readers = env.pool({ max: 10 })
  const others = await Promise.all(Array.from({ length: 20 }, () => readers.query('SELECT inet_server_port() AS p')))
  assert.ok(others.every((r) => r.rows[0].p === replica), 'a fresh client\'s read missed the replica')
  await readers.end()
})
