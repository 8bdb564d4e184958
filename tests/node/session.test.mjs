// Session state through transaction pooling: SET follows its own client and never
// reaches another, startup parameters, LISTEN/NOTIFY, temporary tables.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useEnvironment, parallel, rejectsWithCode, bug, VIA_PGMUX, POOL_SIZE } from './harness.mjs'

const env = useEnvironment()

const DEFAULT_SEARCH_PATH = '"$user", public'

async function settings(c) {
  const r = await c.query(
    "SELECT current_setting('application_name') AS app, current_setting('search_path') AS path, " +
      "current_setting('statement_timeout') AS st, current_schema() AS schema"
  )
  return r.rows[0]
}

// Regression (was a bug): fails through pgmux (another client sees 'other-31', or a client loses its own SET); see the next test.
test('session SET is visible to its own client afterwards and invisible to others', {
  timeout: 60_000,
}, async () => {
  const setup = await env.client()
  await setup.query('DROP SCHEMA IF EXISTS s7 CASCADE')
  await setup.query('CREATE SCHEMA s7')
  await setup.query("CREATE TABLE s7.marker AS SELECT 's7' AS whose")
  await setup.query("CREATE TABLE IF NOT EXISTS public.marker AS SELECT 'public' AS whose")
  await setup.end()

  // Client 7 changes its session; ParameterStatus messages it receives are recorded.
  const seen = new Map()
  const c7 = await env.client({}, (c) => c.connection.on('parameterStatus', (m) => seen.set(m.parameterName, m.parameterValue)))
  await c7.query("SET application_name = 'client-7'")
  await c7.query('SET search_path = s7, public')
  await c7.query("SET statement_timeout = '7s'")
  assert.equal(seen.get('application_name'), 'client-7', 'ParameterStatus application_name seen by client 7')

  // 30 other clients with default settings, and 30 with their own SET, all running while
  // client 7 runs 50 queries.
  const others = await parallel(60, () => env.client())
  let stop = false
  const otherWork = parallel(60, async (i) => {
    const c = others[i]
    const mine = i % 2 === 1
    if (mine) await c.query(`SET application_name = 'other-${i}'`)
    let n = 0
    while (!stop || n < 5) {
      const s = await settings(c)
      assert.equal(s.app, mine ? `other-${i}` : '', `other client ${i} sees application_name`)
      assert.equal(s.path, DEFAULT_SEARCH_PATH, `other client ${i} sees search_path`)
      assert.equal(s.st, '0', `other client ${i} sees statement_timeout`)
      const m = await c.query('SELECT whose FROM marker')
      assert.deepEqual(m.rows, [{ whose: 'public' }], `other client ${i} resolves marker`)
      n++
    }
  }).then(
    () => null,
    (err) => err
  )
  try {
    for (let k = 0; k < 50; k++) {
      const s = await settings(c7)
      assert.deepEqual(s, { app: 'client-7', path: 's7, public', st: '7s', schema: 's7' }, `client 7, query ${k}`)
      const m = await c7.query({ text: 'SELECT whose FROM marker WHERE $1::int >= 0', values: [k] })
      assert.deepEqual(m.rows, [{ whose: 's7' }], `client 7 resolves marker, query ${k}`)
      // Inside a transaction too.
      if (k % 10 === 0) {
        await c7.query('BEGIN')
        assert.equal((await settings(c7)).app, 'client-7')
        await c7.query('COMMIT')
      }
    }
  } finally {
    stop = true
  }
  const otherError = await otherWork
  if (otherError) throw otherError

  // SET LOCAL ends with its transaction; RESET restores the startup value.
  await c7.query('BEGIN')
  await c7.query("SET LOCAL application_name = 'local-7'")
  assert.equal((await settings(c7)).app, 'local-7')
  await c7.query('COMMIT')
  assert.equal((await settings(c7)).app, 'client-7', 'after SET LOCAL')
  await c7.query('RESET application_name')
  assert.equal((await settings(c7)).app, '', 'after RESET application_name')
  assert.equal((await settings(c7)).path, 's7, public', 'search_path is still set')
  await c7.query('RESET ALL')
  assert.deepEqual(await settings(c7), { app: '', path: DEFAULT_SEARCH_PATH, st: '0', schema: 'public' }, 'after RESET ALL')

  // Nothing of client 7 reached anyone, now or later.
  await parallel(60, async (i) => {
    const s = await settings(others[i])
    assert.equal(s.path, DEFAULT_SEARCH_PATH)
    await others[i].end()
  })
  const fresh = await parallel(20, () => env.client())
  await parallel(20, async (i) => {
    assert.deepEqual(await settings(fresh[i]), { app: '', path: DEFAULT_SEARCH_PATH, st: '0', schema: 'public' }, `new client ${i}`)
    await fresh[i].end()
  })
  await c7.end()
})

// One step at a time, so that pgmux hands the same few backends from client to client
// and must bring each backend to the next client's settings before its query, including
// when that query is itself a SET.
// Regression (was a bug): deterministic through pgmux: from round 1 on, clients see '' or another client's application_name.
test('SET as the first statement on a backend last used by another client is tracked', {
  timeout: 30_000,
}, async () => {
  const clients = await parallel(6, () => env.client())
  const want = clients.map(() => '')
  const problems = []
  const check = async (when) => {
    for (let i = 0; i < clients.length; i++) {
      const s = await settings(clients[i])
      if (s.app !== want[i]) problems.push(`${when}: client ${i} sees application_name '${s.app}', expected '${want[i]}'`)
    }
  }
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < clients.length; i++) {
      if ((i + round) % 3 === 0) {
        await clients[i].query('RESET application_name')
        want[i] = ''
      } else {
        await clients[i].query(`SET application_name = 'c${i}-r${round}'`)
        want[i] = `c${i}-r${round}`
      }
      await check(`round ${round}, after client ${i} changed its setting`)
    }
  }
  await parallel(clients.length, (i) => clients[i].end())
  assert.deepEqual(problems.slice(0, 10), [], `${problems.length} wrong settings seen`)
})

test('SET inside a committed transaction persists for that client, rolled back one does not', { timeout: 30_000 }, async () => {
  const c = await env.client()
  const others = await parallel(10, () => env.client())
  await c.query('BEGIN')
  await c.query("SET application_name = 'set-in-tx'")
  await c.query('COMMIT')
  await c.query('BEGIN')
  await c.query("SET search_path = pg_catalog")
  await c.query('ROLLBACK')
  // Let other clients use every backend in between.
  await parallel(10, async (i) => {
    for (let k = 0; k < 5; k++) assert.equal((await settings(others[i])).app, '', `other client ${i}`)
  })
  for (let k = 0; k < 10; k++) {
    const s = await settings(c)
    assert.equal(s.app, 'set-in-tx', `query ${k}: SET in a committed transaction`)
    assert.equal(s.path, DEFAULT_SEARCH_PATH, `query ${k}: SET in a rolled back transaction`)
  }
  await c.end()
  await parallel(10, (i) => others[i].end())
})

test('startup parameters follow their client (application_name, options -c)', { timeout: 30_000 }, async () => {
  // The ParameterStatus messages each client receives, last value per name.
  const record = (c) => {
    c.seen = new Map()
    c.connection.on('parameterStatus', (m) => c.seen.set(m.parameterName, m.parameterValue))
  }
  const clients = await parallel(20, (i) =>
    env.client(
      {
        application_name: `startup-${i}`,
        options: `-c statement_timeout=${1001 + i} -c search_path=public`,
      },
      record
    )
  )
  const plain = await parallel(5, () => env.client({}, record))
  await parallel(20, async (i) => {
    for (let k = 0; k < 10; k++) {
      const s = await settings(clients[i])
      assert.deepEqual(s, { app: `startup-${i}`, path: 'public', st: `${1001 + i}ms`, schema: 'public' }, `client ${i} query ${k}`)
    }
  })
  await parallel(5, async (i) => {
    for (let k = 0; k < 10; k++) {
      assert.deepEqual(await settings(plain[i]), { app: '', path: DEFAULT_SEARCH_PATH, st: '0', schema: 'public' }, `plain ${i}`)
    }
  })
  // Each client's view, as PostgreSQL reports it, stayed its own.
  for (let i = 0; i < 20; i++) {
    assert.equal(clients[i].seen.get('application_name'), `startup-${i}`, `ParameterStatus application_name, client ${i}`)
    assert.equal(clients[i].seen.get('client_encoding'), 'UTF8')
  }
  for (let i = 0; i < 5; i++) assert.equal(plain[i].seen.get('application_name'), '', `ParameterStatus application_name, plain ${i}`)
  // The startup statement_timeout really applies.
  await rejectsWithCode(clients[0].query('SELECT pg_sleep(3)'), '57014', 'statement_timeout from options')
  assert.equal((await settings(clients[0])).app, 'startup-0')
  await parallel(20, (i) => clients[i].end())
  await parallel(5, (i) => plain[i].end())
})

test('LISTEN/NOTIFY: notifications reach the listening client with their payloads', { timeout: 30_000 }, async () => {
  const listener = await env.client()
  const got = []
  let wake = null
  listener.on('notification', (n) => {
    got.push(n)
    if (wake) wake()
  })
  await listener.query('LISTEN pgmux_chan')
  await listener.query('LISTEN "Other Chan"')
  const waitFor = async (count) => {
    const deadline = Date.now() + 5000
    while (got.length < count && Date.now() < deadline) {
      await new Promise((resolve) => {
        wake = resolve
        setTimeout(resolve, 100)
      })
    }
    return got.length
  }

  // Other clients, some of which must never receive anything.
  const bystanders = await parallel(10, () => env.client())
  const stray = []
  for (const b of bystanders) b.on('notification', (n) => stray.push(n))

  const pool = env.pool({ max: 10 })
  await pool.query("NOTIFY pgmux_chan, 'hello'")
  await pool.query("SELECT pg_notify('pgmux_chan', $1)", ['payload with spaces, \'quotes\' and ünïcødé'])
  await pool.query(`NOTIFY "Other Chan", 'other'`)
  const tx = await pool.connect()
  await tx.query('BEGIN')
  await tx.query("NOTIFY pgmux_chan, 'from a transaction'")
  await tx.query("NOTIFY pgmux_chan, 'rolled back'")
  await tx.query('ROLLBACK')
  await tx.query('BEGIN')
  await tx.query("NOTIFY pgmux_chan, 'from a transaction'")
  await tx.query('COMMIT')
  tx.release()
  assert.equal(await waitFor(4), 4, 'notifications received')
  // Many at once from many clients while the listener also runs queries.
  await parallel(40, (i) => pool.query('SELECT pg_notify($1, $2)', ['pgmux_chan', `n${i}`]))
  for (let k = 0; k < 10; k++) assert.equal((await listener.query('SELECT $1::int AS k', [k])).rows[0].k, k)
  await parallel(10, (i) => bystanders[i].query('SELECT 1'))
  assert.equal(await waitFor(44), 44, 'notifications received')

  assert.deepEqual(
    got.slice(0, 4).map((n) => [n.channel, n.payload]),
    [
      ['pgmux_chan', 'hello'],
      ['pgmux_chan', "payload with spaces, 'quotes' and ünïcødé"],
      ['Other Chan', 'other'],
      ['pgmux_chan', 'from a transaction'],
    ]
  )
  assert.deepEqual(
    got
      .slice(4)
      .map((n) => n.payload)
      .sort(),
    Array.from({ length: 40 }, (_, i) => `n${i}`).sort()
  )
  // The listener's backend process is the one that received them.
  const pid = (await listener.query('SELECT pg_backend_pid() AS pid')).rows[0].pid
  const listening = await env.adminQuery('SELECT pid FROM pg_stat_activity WHERE pid = $1', [pid])
  assert.equal(listening.rowCount, 1)

  // After UNLISTEN nothing more arrives.
  await listener.query('UNLISTEN *')
  await pool.query("NOTIFY pgmux_chan, 'too late'")
  await parallel(10, (i) => bystanders[i].query('SELECT 1'))
  await listener.query('SELECT 1')
  await new Promise((r) => setTimeout(r, 300))
  await listener.query('SELECT 1')
  assert.equal(got.length, 44, 'notification after UNLISTEN')
  assert.deepEqual(stray, [], 'clients that never listened received notifications')
  await pool.end()
  await listener.end()
  await parallel(10, (i) => bystanders[i].end())
})

test('a listener that disconnects leaves nothing behind for the next client', { timeout: 30_000 }, async () => {
  for (let gen = 0; gen < 3; gen++) {
    const l = await env.client()
    await l.query('LISTEN leftover_chan')
    await l.end()
  }
  const clients = await parallel(10, () => env.client())
  const stray = []
  for (const c of clients) c.on('notification', (n) => stray.push(n))
  const pool = env.pool({ max: 5 })
  await pool.query("NOTIFY leftover_chan, 'nobody listens'")
  await parallel(10, async (i) => {
    for (let k = 0; k < 3; k++) await clients[i].query('SELECT 1')
  })
  await new Promise((r) => setTimeout(r, 300))
  await parallel(10, (i) => clients[i].query('SELECT 1'))
  assert.deepEqual(stray, [], 'notifications for a departed listener reached other clients')
  await parallel(10, (i) => clients[i].end())
  await pool.end()
})

test('a temporary table is never visible to another client', { timeout: 60_000 }, async () => {
  const a = await env.client()
  await a.query('CREATE TEMP TABLE tmp_a (x int)')
  await a.query('INSERT INTO tmp_a VALUES (1), (2), (3)')
  const b = await env.client()
  await b.query('CREATE TEMP TABLE tmp_a (x int)')
  await b.query('INSERT INTO tmp_a VALUES (100)')

  const others = await parallel(30, () => env.client())
  await parallel(30, async (i) => {
    for (let k = 0; k < 5; k++) {
      const r = await others[i].query("SELECT to_regclass('tmp_a') IS NULL AS absent")
      assert.equal(r.rows[0].absent, true, `client ${i} sees another client's temp table`)
      await rejectsWithCode(others[i].query('SELECT * FROM tmp_a'), '42P01', `client ${i}: SELECT from tmp_a`)
    }
  })
  // Meanwhile a and b keep their own tables, query after query.
  for (let k = 0; k < 20; k++) {
    const [ra, rb] = await Promise.all([
      a.query('SELECT sum(x)::int AS s FROM tmp_a'),
      b.query({ text: 'SELECT sum(x)::int + $1::int AS s FROM tmp_a', values: [0] }),
    ])
    assert.equal(ra.rows[0].s, 6, `client a, query ${k}`)
    assert.equal(rb.rows[0].s, 100, `client b, query ${k}`)
  }
  if (VIA_PGMUX) {
    // pool_size 5 with a and b pinned: the others still got served above.
    assert.ok((await env.appBackends()) <= POOL_SIZE)
  }
  // After a and b leave, their tables are gone for everyone, whichever backend they get.
  await a.end()
  await b.end()
  const pool = env.pool({ max: 30 })
  await parallel(60, async (i) => {
    const r = await pool.query("SELECT to_regclass('tmp_a') IS NULL AS absent")
    assert.equal(r.rows[0].absent, true, `query ${i} after the owners left`)
  })
  await parallel(30, (i) => others[i].end())
  await pool.end()
})

// Runs fn(i) for each of `n` connected clients in turn; each step must finish within
// `ms`, or the test fails saying which client was left waiting (for a backend).
async function stepsWithin(clients, ms, fn) {
  for (let i = 0; i < clients.length; i++) {
    let timer
    const late = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`client ${i} of ${clients.length} still waiting after ${ms} ms (pool_size ${POOL_SIZE}): are finished clients still pinned?`)),
        ms
      )
    })
    try {
      await Promise.race([fn(clients[i], i), late])
    } finally {
      clearTimeout(timer)
    }
  }
}

// State that pins a client to its backend (temp tables, LISTEN, session advisory locks)
// and that the client has undone again must not keep the backend: pg.Pool keeps released
// clients open (idleTimeoutMillis, 10 s by default), so a client left pinned holds a
// backend while idle. POOL_SIZE + 3 such clients, all still connected, must all get
// served, one after the other, and so must a newcomer.
async function undoneStateReleases(body) {
  const clients = await parallel(POOL_SIZE + 3, () => env.client())
  try {
    await stepsWithin(clients, 5000, body)
    clients.push(await env.client())
    await stepsWithin(clients, 5000, async (c, i) => {
      assert.equal((await c.query('SELECT $1::int AS i', [i])).rows[0].i, i)
    })
  } finally {
    await parallel(clients.length, (i) => Promise.race([clients[i].end().catch(() => {}), new Promise((r) => setTimeout(r, 2000))]))
  }
}

// Regression (was a bug): CREATE TEMP ... ON COMMIT DROP pins the client for good (only DISCARD TEMP or disconnect unpins).
test('a temp table created ON COMMIT DROP leaves no client holding a backend', {
  timeout: 30_000,
}, async () => {
  await undoneStateReleases(async (c, i) => {
    await c.query('BEGIN')
    await c.query('CREATE TEMP TABLE tx_tmp (v int) ON COMMIT DROP')
    await c.query('INSERT INTO tx_tmp VALUES ($1)', [i])
    assert.equal((await c.query('SELECT v FROM tx_tmp')).rows[0].v, i)
    await c.query('COMMIT')
    assert.equal((await c.query("SELECT to_regclass('tx_tmp') IS NULL AS absent")).rows[0].absent, true)
  })
})

// Regression (was a bug): the pin is taken when the statement is scanned, and a ROLLBACK does not undo it.
test('a temp table created in a rolled back transaction leaves no client holding a backend', {
  timeout: 30_000,
}, async () => {
  await undoneStateReleases(async (c) => {
    await c.query('BEGIN')
    await c.query('CREATE TEMP TABLE rb_tmp (v int)')
    await c.query('ROLLBACK')
    assert.equal((await c.query("SELECT to_regclass('rb_tmp') IS NULL AS absent")).rows[0].absent, true)
  })
})

// Regression (was a bug): DROP TABLE of the client's (only) temp table does not unpin.
test('a dropped temp table leaves no client holding a backend', {
  timeout: 30_000,
}, async () => {
  await undoneStateReleases(async (c, i) => {
    await c.query('CREATE TEMP TABLE dropped_tmp (v int)')
    await c.query('INSERT INTO dropped_tmp VALUES ($1)', [i])
    await c.query('DROP TABLE dropped_tmp')
  })
})

// Regression (was a bug): regression in e351d5b: tracking_effects() needs extras_, so pending_unpins_ alone is never applied.
test('DISCARD TEMP after a temp table leaves no client holding a backend', {
  timeout: 30_000,
}, async () => {
  await undoneStateReleases(async (c, i) => {
    await c.query('CREATE TEMP TABLE discarded_tmp (v int)')
    await c.query('INSERT INTO discarded_tmp VALUES ($1)', [i])
    await c.query('DISCARD TEMP')
    assert.equal((await c.query("SELECT to_regclass('discarded_tmp') IS NULL AS absent")).rows[0].absent, true)
  })
})

// Regression (was a bug): only UNLISTEN * unpins, not UNLISTEN of the last channel listened to.
test('UNLISTEN of the only channel leaves no client holding a backend', {
  timeout: 30_000,
}, async () => {
  await undoneStateReleases(async (c) => {
    await c.query('LISTEN undone_chan')
    await c.query('UNLISTEN undone_chan')
  })
})

// Regression (was a bug): regression in e351d5b, as for DISCARD TEMP.
test('UNLISTEN * leaves no client holding a backend', {
  timeout: 30_000,
}, async () => {
  await undoneStateReleases(async (c) => {
    await c.query('LISTEN undone_chan')
    await c.query('UNLISTEN *')
  })
})

// Regression (was a bug): only pg_advisory_unlock_all() unpins, not pg_advisory_unlock() of the last lock held.
test('a session advisory lock, unlocked again, leaves no client holding a backend', {
  timeout: 30_000,
}, async () => {
  await undoneStateReleases(async (c, i) => {
    assert.equal((await c.query('SELECT pg_advisory_lock($1::bigint) IS NOT NULL AS ok', [i])).rows[0].ok, true)
    assert.equal((await c.query('SELECT pg_advisory_unlock($1::bigint) AS ok', [i])).rows[0].ok, true)
  })
})

test('a transaction-scoped advisory lock leaves no client holding a backend', { timeout: 30_000 }, async () => {
  await undoneStateReleases(async (c, i) => {
    await c.query('BEGIN')
    await c.query('SELECT pg_advisory_xact_lock($1::bigint)', [i])
    await c.query('COMMIT')
  })
})

// Regression (was a bug): pg_try_advisory_lock pins whether or not it got the lock.
test('a failed pg_try_advisory_lock leaves no client holding a backend', {
  timeout: 30_000,
}, async () => {
  const holder = await env.client()
  await holder.query('SELECT pg_advisory_lock(4343)')
  try {
    await undoneStateReleases(async (c, i) => {
      assert.equal((await c.query('SELECT pg_try_advisory_lock(4343) AS got')).rows[0].got, false, `client ${i}`)
    })
  } finally {
    await holder.end()
  }
})

test('a session advisory lock follows its client until unlocked', { timeout: 30_000 }, async () => {
  const holder = await env.client()
  await holder.query('SELECT pg_advisory_lock(4242)')
  const held = (c) =>
    c.query(
      "SELECT count(*)::int AS total, count(*) FILTER (WHERE pid = pg_backend_pid())::int AS mine FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND granted"
    )
  const others = await parallel(10, () => env.client())
  try {
    for (let k = 0; k < 5; k++) {
      // Others see it held, not by their backend; the holder sees it held by its own.
      await parallel(10, async (i) => {
        assert.deepEqual((await held(others[i])).rows[0], { total: 1, mine: 0 }, `client ${i}, round ${k}`)
      })
      assert.deepEqual((await held(holder)).rows[0], { total: 1, mine: 1 }, `holder, round ${k}`)
    }
    await holder.query('SELECT pg_advisory_unlock(4242)')
    assert.deepEqual((await held(others[0])).rows[0], { total: 0, mine: 0 }, 'after unlock')
  } finally {
    await holder.end()
    await parallel(10, (i) => others[i].end())
  }
})
