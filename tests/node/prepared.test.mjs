// Extended protocol through pgmux: node-postgres named prepared statements
// ({name, text, values}) reused across clients and backends, the same name with
// different texts in different clients, and parameter types round-tripping.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useEnvironment, parallel, rejectsWithCode, VIA_PGMUX, POOL_SIZE } from './harness.mjs'

const env = useEnvironment()

test('named statement "get" reused by 100 clients over the pooled backends', { timeout: 60_000 }, async () => {
  const pool = env.pool({ max: 100 })
  const pids = new Set()
  await parallel(100, async (i) => {
    const c = await pool.connect()
    try {
      for (let k = 0; k < 10; k++) {
        const n = i * 100 + k
        const r = await c.query({ name: 'get', text: 'select $1::int + 1 as v', values: [n] })
        assert.deepEqual(r.rows, [{ v: n + 1 }], `client ${i} execution ${k}`)
        // A second named statement, so each client juggles two names on whatever
        // backend it gets; it also tells which backend ran it.
        const p = await c.query({ name: 'pid', text: 'select pg_backend_pid() as pid, $1::text as tag', values: [`t${n}`] })
        assert.equal(p.rows[0].tag, `t${n}`)
        pids.add(p.rows[0].pid)
      }
    } finally {
      c.release()
    }
  })
  if (VIA_PGMUX) {
    assert.ok(pids.size > 1, `all executions ran on one backend (${[...pids]}): the test proves nothing`)
    assert.ok(pids.size <= POOL_SIZE, `${pids.size} backends seen, pool_size is ${POOL_SIZE}`)
  }
  // The same clients (pg caches "get" as prepared per connection) reused from the pool.
  await parallel(300, async (i) => {
    const r = await pool.query({ name: 'get', text: 'select $1::int + 1 as v', values: [i] })
    assert.equal(r.rows[0].v, i + 1)
  })
  assert.deepEqual(pool.idleErrors, [])
  await pool.end()
})

test('two clients, same statement name, different texts: each gets its own', { timeout: 60_000 }, async () => {
  const a = await env.client()
  const b = await env.client()
  const c = await env.client()
  const qa = (n) => a.query({ name: 'same', text: 'select $1::int * 10 as v', values: [n] })
  const qb = (n) => b.query({ name: 'same', text: "select $1::text || '-b' as v, 'b' as who", values: [String(n)] })
  const qc = (n) => c.query({ name: 'same', text: 'select $1::int as x, $2::int as y, $1::int + $2::int as sum', values: [n, n + 1] })
  // Interleaved and concurrent, so the statements land on shared backends in any order.
  for (let round = 0; round < 20; round++) {
    const [ra, rb, rc] = await Promise.all([qa(round), qb(round), qc(round)])
    assert.deepEqual(ra.rows, [{ v: round * 10 }], `a round ${round}`)
    assert.deepEqual(rb.rows, [{ v: `${round}-b`, who: 'b' }], `b round ${round}`)
    assert.deepEqual(rc.rows, [{ x: round, y: round + 1, sum: 2 * round + 1 }], `c round ${round}`)
    assert.deepEqual(
      ra.fields.map((f) => f.name),
      ['v']
    )
    assert.deepEqual(
      rc.fields.map((f) => f.name),
      ['x', 'y', 'sum']
    )
  }
  // Also inside transactions, which hold one backend for several executions.
  await Promise.all([
    (async () => {
      await a.query('BEGIN')
      for (let k = 0; k < 5; k++) assert.equal((await qa(k)).rows[0].v, k * 10)
      await a.query('COMMIT')
    })(),
    (async () => {
      await b.query('BEGIN')
      for (let k = 0; k < 5; k++) assert.equal((await qb(k)).rows[0].v, `${k}-b`)
      await b.query('COMMIT')
    })(),
  ])
})

test('a new client reusing a departed client\'s statement name gets its own text', { timeout: 60_000 }, async () => {
  for (let gen = 0; gen < 10; gen++) {
    const c = await env.client()
    const r = await c.query({ name: 'reused_name', text: `select $1::int + ${gen * 1000} as v`, values: [7] })
    assert.equal(r.rows[0].v, 7 + gen * 1000, `generation ${gen}`)
    await c.end()
  }
})

test('named statements survive errors, and many distinct names per client', { timeout: 60_000 }, async () => {
  const c = await env.client()
  const div = (n) => c.query({ name: 'div', text: 'select 100 / $1::int as q', values: [n] })
  assert.equal((await div(5)).rows[0].q, 20)
  await rejectsWithCode(div(0), '22012', 'division by zero in a named statement')
  assert.equal((await div(4)).rows[0].q, 25)
  // Error inside a transaction, rollback, statement still usable.
  await c.query('BEGIN')
  await rejectsWithCode(div(0), '22012')
  await c.query('ROLLBACK')
  assert.equal((await div(10)).rows[0].q, 10)

  // 300 distinct names (more than the default per-backend cache of 200), used twice.
  for (let pass = 0; pass < 2; pass++) {
    for (let i = 0; i < 300; i++) {
      const r = await c.query({ name: `s${i}`, text: `select $1::int + ${i} as v`, values: [pass] })
      assert.equal(r.rows[0].v, pass + i, `statement s${i}, pass ${pass}`)
    }
  }
  // While other clients keep the backends busy with their own statements.
  const pool = env.pool({ max: 20 })
  await parallel(20, async (j) => {
    for (let i = 0; i < 300; i += 37) {
      const r = await pool.query({ name: `s${i}`, text: `select $1::int - ${i} as v`, values: [j] })
      assert.equal(r.rows[0].v, j - i, `pool client, statement s${i}`)
    }
  })
  for (let i = 0; i < 300; i += 13) {
    const r = await c.query({ name: `s${i}`, text: `select $1::int + ${i} as v`, values: [1] })
    assert.equal(r.rows[0].v, 1 + i, `statement s${i} after the pool clients`)
  }
  await pool.end()
})

test('parameter types round-trip through the extended protocol', { timeout: 60_000 }, async () => {
  const pool = env.pool({ max: 10 })
  const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i))
  const big = 'x'.repeat(1 << 20) + 'é'
  const json = { a: 1, b: [true, null, 'three'], c: { 'nested "key"': 'ünïcødé' } }
  const when = new Date('2024-02-29T12:34:56.789Z')
  const cases = [
    ['int', 'select $1::int as v', [-2147483648], -2147483648],
    ['int max', 'select $1::int as v', [2147483647], 2147483647],
    ['bigint', 'select $1::bigint as v', ['9223372036854775807'], '9223372036854775807'],
    ['numeric', 'select $1::numeric as v', ['12345678901234567890.123456789'], '12345678901234567890.123456789'],
    ['float8', 'select $1::float8 as v', [Math.PI], Math.PI],
    ['bool', 'select $1::bool as v', [true], true],
    ['text', 'select $1::text as v', ["it's \"quoted\"; -- not a comment \\ ünïcødé 😀"], "it's \"quoted\"; -- not a comment \\ ünïcødé 😀"],
    ['empty text', 'select $1::text as v', [''], ''],
    ['1 MiB text', 'select $1::text as v', [big], big],
    ['bytea', 'select $1::bytea as v', [bytes], bytes],
    ['empty bytea', 'select $1::bytea as v', [Buffer.alloc(0)], Buffer.alloc(0)],
    ['json', 'select $1::json as v', [json], json],
    ['jsonb', 'select $1::jsonb as v', [json], json],
    ['null int', 'select $1::int as v', [null], null],
    ['null text', 'select $1::text as v', [null], null],
    ['undefined is null', 'select $1::text is null as v', [undefined], true],
    ['int[]', 'select $1::int[] as v', [[1, 2, null, -4]], [1, 2, null, -4]],
    ['text[]', 'select $1::text[] as v', [['a', 'b,c', 'd"e', null, '', 'NULL']], ['a', 'b,c', 'd"e', null, '', 'NULL']],
    ['int[][]', 'select $1::int[][] as v', [[[1, 2], [3, 4]]], [[1, 2], [3, 4]]],
    ['empty array', 'select $1::int[] as v', [[]], []],
    ['timestamptz', 'select $1::timestamptz as v', [when], when],
    ['uuid', 'select $1::uuid as v', ['123e4567-e89b-12d3-a456-426614174000'], '123e4567-e89b-12d3-a456-426614174000'],
    ['many params', `select ${Array.from({ length: 100 }, (_, i) => `$${i + 1}::int`).join(' + ')} as v`, Array.from({ length: 100 }, (_, i) => i), 4950],
  ]
  const check = async (label, run) => {
    for (const [name, text, values, want] of cases) {
      const r = await run(name, text, values)
      assert.deepEqual(r.rows, [{ v: want }], `${label}: ${name}`)
    }
  }
  // Unnamed statements (pg sends Parse "" / Bind / Describe / Execute / Sync).
  await check('unnamed', (name, text, values) => pool.query(text, values))
  // Named statements, executed twice each so the second run only binds.
  for (let k = 0; k < 2; k++) {
    await check(`named, run ${k}`, (name, text, values) => pool.query({ name: `type_${name}`, text, values }))
  }
  // All at once over the pool.
  await Promise.all(
    cases.map(async ([name, text, values, want]) => {
      const r = await pool.query(text, values)
      assert.deepEqual(r.rows, [{ v: want }], `concurrent: ${name}`)
    })
  )
  // Stored and read back, including from another connection.
  await pool.query('DROP TABLE IF EXISTS typed')
  await pool.query('CREATE TABLE typed (id int PRIMARY KEY, b bytea, j jsonb, a text[], t text, n int)')
  await pool.query('INSERT INTO typed VALUES ($1, $2, $3, $4, $5, $6)', [1, bytes, json, ['x', null, 'y z'], big, null])
  const back = await pool.query('SELECT * FROM typed WHERE id = $1', [1])
  assert.deepEqual(back.rows, [{ id: 1, b: bytes, j: json, a: ['x', null, 'y z'], t: big, n: null }])
  // rowMode array and binary-safe NUL-free text.
  const arr = await pool.query({ text: 'select $1::int as a, $2::text as b', values: [1, 'two'], rowMode: 'array' })
  assert.deepEqual(arr.rows, [[1, 'two']])
  await rejectsWithCode(pool.query('select $1::int', ['not a number']), '22P02', 'invalid int input')
  await rejectsWithCode(pool.query('select $1::text', ['nul\u0000byte']), '22021', 'NUL byte in text')
  const after = await pool.query('select $1::int as v', [5])
  assert.equal(after.rows[0].v, 5)
  await pool.end()
})

test('SQL-level PREPARE / EXECUTE / DEALLOCATE, same name in several clients', { timeout: 30_000 }, async () => {
  // More clients than backends, all keeping their statement: nothing may pin them.
  const n = POOL_SIZE + 3
  const clients = await parallel(n, () => env.client())
  let timer
  const work = (async () => {
    for (let i = 0; i < n; i++) {
      await clients[i].query(`PREPARE q(int) AS SELECT $1 * ${i + 1} AS v, ${i} AS who`)
    }
    await parallel(n, async (i) => {
      for (let k = 0; k < 10; k++) {
        const r = await clients[i].query(`EXECUTE q(${k})`)
        assert.deepEqual(r.rows, [{ v: k * (i + 1), who: i }], `client ${i}, EXECUTE ${k}`)
      }
    })
    // Inside a transaction as well.
    await parallel(n, async (i) => {
      await clients[i].query('BEGIN')
      assert.equal((await clients[i].query('EXECUTE q(2)')).rows[0].v, 2 * (i + 1))
      await clients[i].query('COMMIT')
    })
    await parallel(n, async (i) => {
      await clients[i].query('DEALLOCATE q')
      await rejectsWithCode(clients[i].query('EXECUTE q(1)'), '26000', `client ${i}: EXECUTE after DEALLOCATE`)
      await clients[i].query('PREPARE q2(text) AS SELECT upper($1) AS u')
      assert.equal((await clients[i].query("EXECUTE q2('abc')")).rows[0].u, 'ABC')
      await clients[i].query('DEALLOCATE ALL')
      await rejectsWithCode(clients[i].query("EXECUTE q2('abc')"), '26000', `client ${i}: EXECUTE after DEALLOCATE ALL`)
    })
  })()
  try {
    await Promise.race([
      work,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${n} clients with SQL prepared statements over pool_size ${POOL_SIZE} stalled for 15 s`)), 15_000)
      }),
    ])
  } finally {
    clearTimeout(timer)
    await parallel(n, (i) => Promise.race([clients[i].end().catch(() => {}), new Promise((r) => setTimeout(r, 2000))]))
  }
})
