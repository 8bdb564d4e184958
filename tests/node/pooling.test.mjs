// Transaction pooling under load: 200 node-postgres clients over pool_size 5, errors
// inside transactions, and connection churn. Nothing lost, nothing misattributed.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { useEnvironment, parallel, withLimit, rejectsWithCode, VIA_PGMUX, POOL_SIZE } from './harness.mjs'

const env = useEnvironment()

const CLIENTS = 200
const ROUNDS = 3

test('200 concurrent clients: BEGIN / INSERT / SELECT / COMMIT, values checked per client', { timeout: 90_000 }, async () => {
  const pool = env.pool({ max: CLIENTS })
  await pool.query('DROP TABLE IF EXISTS pool_rows')
  await pool.query(
    'CREATE TABLE pool_rows (id int PRIMARY KEY, client int NOT NULL, round int NOT NULL, value text NOT NULL, pid int NOT NULL)'
  )
  const expected = new Map() // id -> {client, round, value}

  for (let round = 0; round < ROUNDS; round++) {
    // All 200 clients are checked out (200 client connections to pgmux at once) before
    // any of them starts a transaction; there is no barrier inside the transactions,
    // which would deadlock over 5 backends.
    const clients = await parallel(CLIENTS, () => pool.connect())
    try {
      assert.equal(pool.totalCount, CLIENTS)
      await parallel(CLIENTS, async (i) => {
        const c = clients[i]
        const id = round * 1000 + i
        const value = `c${i}-r${round}-${randomBytes(6).toString('hex')}`
        expected.set(id, { client: i, round, value })
        await c.query('BEGIN')
        const pid1 = (await c.query('SELECT pg_backend_pid() AS pid')).rows[0].pid
        await c.query('INSERT INTO pool_rows (id, client, round, value, pid) VALUES ($1, $2, $3, $4, pg_backend_pid())', [
          id,
          i,
          round,
          value,
        ])
        const sel = await c.query('SELECT client, round, value, pid FROM pool_rows WHERE id = $1', [id])
        assert.equal(sel.rowCount, 1, `client ${i} round ${round}: own row not visible in its transaction`)
        assert.deepEqual(sel.rows[0], { client: i, round, value, pid: pid1 }, `client ${i} round ${round}`)
        // The whole transaction stays on one backend.
        const inTx = await c.query(
          'SELECT pg_backend_pid() AS pid, txid_current_if_assigned() IS NOT NULL AS has_xid'
        )
        assert.equal(inTx.rows[0].pid, pid1, `client ${i} round ${round}: backend changed inside a transaction`)
        assert.equal(inTx.rows[0].has_xid, true, `client ${i} round ${round}: transaction lost its xid`)
        await c.query('COMMIT')
      })
    } finally {
      for (const c of clients) c.release()
    }
  }

  // Checked on PostgreSQL itself, not through pgmux.
  const all = await env.adminQuery('SELECT id, client, round, value FROM pool_rows ORDER BY id')
  assert.equal(all.rowCount, CLIENTS * ROUNDS, 'rows committed')
  for (const row of all.rows) {
    const want = expected.get(row.id)
    assert.ok(want, `unexpected row id ${row.id}`)
    assert.deepEqual({ client: row.client, round: row.round, value: row.value }, want, `row ${row.id}`)
  }
  const pids = await env.adminQuery('SELECT count(DISTINCT pid)::int AS n FROM pool_rows')
  if (VIA_PGMUX) {
    assert.ok(pids.rows[0].n <= POOL_SIZE, `rows written by ${pids.rows[0].n} backends, pool_size is ${POOL_SIZE}`)
    assert.ok((await env.appBackends()) <= POOL_SIZE, 'backends open on PostgreSQL')
  }
  assert.deepEqual(pool.idleErrors, [])
  await pool.end()
})

test('200 concurrent autocommit queries through pool.query, several rounds', { timeout: 60_000 }, async () => {
  const pool = env.pool({ max: CLIENTS })
  for (let round = 0; round < ROUNDS; round++) {
    await parallel(CLIENTS, async (i) => {
      const tag = `q${round}-${i}`
      const r = await pool.query('SELECT $1::text AS tag, $2::int * 2 AS twice', [tag, i])
      assert.deepEqual(r.rows, [{ tag, twice: i * 2 }])
      // Simple protocol too (no parameters).
      const s = await pool.query(`SELECT '${tag}' AS tag, ${i} + 1 AS next`)
      assert.deepEqual(s.rows, [{ tag, next: i + 1 }])
    })
  }
  await pool.end()
})

test('constraint violation inside a transaction, ROLLBACK, and the pool keeps working', { timeout: 60_000 }, async () => {
  const pool = env.pool({ max: 50 })
  await pool.query('DROP TABLE IF EXISTS err_rows')
  await pool.query('CREATE TABLE err_rows (id int PRIMARY KEY, note text)')
  await pool.query("INSERT INTO err_rows VALUES (1, 'existing')")

  // One client, step by step.
  const c = await pool.connect()
  try {
    await c.query('BEGIN')
    await c.query("INSERT INTO err_rows VALUES (2, 'in tx')")
    await rejectsWithCode(c.query("INSERT INTO err_rows VALUES ($1, 'dup')", [1]), '23505', 'duplicate key')
    await rejectsWithCode(c.query('SELECT 1'), '25P02', 'query in an aborted transaction')
    await c.query('ROLLBACK')
    const after = await c.query('SELECT id FROM err_rows ORDER BY id')
    assert.deepEqual(after.rows, [{ id: 1 }], 'the rolled back insert must be gone')
    // The connection is usable again, in and out of transactions.
    await c.query('BEGIN')
    await c.query("INSERT INTO err_rows VALUES (3, 'after rollback')")
    await c.query('COMMIT')
  } finally {
    c.release()
  }

  // 50 clients at once, each failing inside its own transaction, then rolling back.
  await parallel(50, async (i) => {
    const k = await pool.connect()
    try {
      await k.query('BEGIN')
      await k.query('INSERT INTO err_rows VALUES ($1, $2)', [1000 + i, 'will be rolled back'])
      // Alternate simple and extended protocol for the failing statement.
      if (i % 2) {
        await rejectsWithCode(k.query('INSERT INTO err_rows VALUES (1, $1)', ['dup']), '23505')
      } else {
        await rejectsWithCode(k.query("INSERT INTO err_rows VALUES (1, 'dup')"), '23505')
      }
      await rejectsWithCode(k.query('SELECT $1::int', [i]), '25P02')
      await k.query('ROLLBACK')
      const own = await k.query('SELECT count(*)::int AS n FROM err_rows WHERE id = $1', [1000 + i])
      assert.equal(own.rows[0].n, 0, `client ${i}: rolled back row still visible`)
      const st = await k.query('SELECT $1::int + 1 AS v', [i])
      assert.equal(st.rows[0].v, i + 1)
    } finally {
      k.release()
    }
  })

  // Errors outside transactions (autocommit, both protocols) do not break anything either.
  await parallel(50, async (i) => {
    await rejectsWithCode(pool.query('SELECT 1 / $1::int', [0]), '22012', 'division by zero (extended)')
    await rejectsWithCode(pool.query('SELECT 1 / 0'), '22012', 'division by zero (simple)')
    await rejectsWithCode(pool.query('SELEC broken'), '42601', 'syntax error')
    const r = await pool.query('SELECT $1::int AS i', [i])
    assert.equal(r.rows[0].i, i)
  })

  const rows = await env.adminQuery('SELECT id FROM err_rows ORDER BY id')
  assert.deepEqual(
    rows.rows.map((r) => r.id),
    [1, 3]
  )
  // No backend was left inside a transaction.
  const stuck = await env.adminQuery(
    "SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'app' AND state LIKE 'idle in transaction%'"
  )
  assert.equal(stuck.rows[0].n, 0, 'backends idle in transaction')
  assert.deepEqual(pool.idleErrors, [])
  await pool.end()
})

test('client that disconnects inside a transaction: its work is rolled back, the pool goes on', { timeout: 60_000 }, async () => {
  const pool = env.pool({ max: 20 })
  await pool.query('DROP TABLE IF EXISTS gone_rows')
  await pool.query('CREATE TABLE gone_rows (id int PRIMARY KEY)')
  await parallel(10, async (i) => {
    const c = await env.client()
    await c.query('BEGIN')
    await c.query('INSERT INTO gone_rows VALUES ($1)', [i])
    // Close the socket without COMMIT or ROLLBACK.
    c.connection.stream.destroy()
    await c.end().catch(() => {})
  })
  // The backends are reusable and nothing of the abandoned transactions was committed.
  await parallel(40, async (i) => {
    const r = await pool.query('SELECT count(*)::int AS n FROM gone_rows')
    assert.equal(r.rows[0].n, 0, `query ${i}: abandoned inserts were committed`)
  })
  const deadline = Date.now() + 5000
  let stuck
  do {
    stuck = (
      await env.adminQuery(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'app' AND state LIKE 'idle in transaction%'"
      )
    ).rows[0].n
    if (stuck === 0) break
    await new Promise((r) => setTimeout(r, 100))
  } while (Date.now() < deadline)
  assert.equal(stuck, 0, 'backends still idle in transaction 5 s after their clients left')
  await pool.end()
})

test('idleTimeoutMillis churn: 500 short-lived connections all succeed', { timeout: 60_000 }, async () => {
  const TOTAL = 500
  const BURST = 50
  const pool = env.pool({ max: BURST, idleTimeoutMillis: 1 })
  let connects = 0
  pool.on('connect', () => connects++)
  let done = 0
  for (let b = 0; b < TOTAL / BURST; b++) {
    // Each burst checks out BURST clients at once, so each needs its own connection;
    // released, they close after 1 ms idle, and the next burst connects again.
    await parallel(BURST, async (i) => {
      const c = await pool.connect()
      try {
        const r = await c.query('SELECT $1::int AS n', [b * BURST + i])
        assert.equal(r.rows[0].n, b * BURST + i)
        done++
      } finally {
        c.release()
      }
    })
    const deadline = Date.now() + 2000
    while (pool.totalCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
    assert.equal(pool.totalCount, 0, `burst ${b}: idle clients were not closed`)
  }
  assert.equal(done, TOTAL)
  assert.equal(connects, TOTAL, 'connections opened')
  assert.deepEqual(pool.idleErrors, [])

  // And plain connect / query / end, 500 times, 25 at a time.
  await withLimit(TOTAL, 25, async (i) => {
    const c = await env.client({ application_name: `churn-${i}` })
    const r = await c.query('SELECT current_setting($1) AS app', ['application_name'])
    assert.equal(r.rows[0].app, `churn-${i}`)
    await c.end()
  })

  // pgmux still serves, and never opened more backends than pool_size.
  const r = await pool.query('SELECT 42 AS answer')
  assert.equal(r.rows[0].answer, 42)
  if (VIA_PGMUX) assert.ok((await env.appBackends()) <= POOL_SIZE, 'backends open on PostgreSQL')
  await pool.end()
})
