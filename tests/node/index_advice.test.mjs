// Index advice (issue 5) from node-postgres: a query with parameters (extended protocol,
// unnamed statement) and a named prepared statement, each on a large table column without
// an index, get one record each in the JSON-lines file, with the index that fixes them; a
// primary-key lookup gets none. The advisor runs as the default user (the only user with a
// plaintext password, app) and, without hypopg in this cluster, judges by its own estimate.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { useEnvironment, VIA_PGMUX } from './harness.mjs'

const MIN_CALLS = 5
const CALLS = 10

const env = useEnvironment({
  extraConfig: (e) => `
[index_advice]
enabled = true
file = "${path.join(e.workDir, 'advice.jsonl')}"
min_calls = ${MIN_CALLS}
recheck_interval = 2
min_table_pages = 100
min_table_rows = 5000
`,
})

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// The records: the latest line for each (database, fingerprint).
function readRecords() {
  const file = path.join(env.workDir, 'advice.jsonl')
  const records = new Map()
  if (!existsSync(file)) return { records, text: '' }
  const text = readFileSync(file, 'utf8')
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    const record = JSON.parse(line) // a line that is not JSON fails the test here
    records.set(`${record.database}/${record.fingerprint}`, record)
  }
  return { records, text }
}

const noSpaces = (s) => String(s).replace(/\s+/g, '')

test(
  'a parameterized query and a named statement without an index get advice',
  { timeout: 90_000, skip: !VIA_PGMUX && 'index advice is a pgmux feature' },
  async () => {
    // 30k orders in ~370 pages: customer_id has 10k values (3 rows each), product_id 1000
    // (30 rows each), neither indexed; the planner can only scan the table.
    await env.adminQuery(`
      SET client_min_messages = warning;
      DROP TABLE IF EXISTS orders;
      CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL,
        product_id int NOT NULL, created_at timestamptz NOT NULL, status text NOT NULL, note text);
      INSERT INTO orders (customer_id, product_id, created_at, status, note)
        SELECT (g * 7919) % 10000 + 1, (g::bigint * 104729 % 1000)::int + 1,
          timestamptz '2024-01-01 00:00:00+00' + g * interval '8 minutes',
          (ARRAY['open', 'paid', 'shipped'])[g % 3 + 1], 'note ' || md5(g::text)
        FROM generate_series(1, 30000) g;
      GRANT SELECT ON orders TO app;
      ANALYZE orders;`)
    const { rows } = await env.adminQuery("SELECT relpages FROM pg_class WHERE relname = 'orders'")
    assert.ok(rows[0].relpages > 200, `orders has only ${rows[0].relpages} pages`)

    const pool = env.pool({ max: 4 })
    for (let i = 0; i < CALLS; i++) {
      const byCustomer = await pool.query('SELECT * FROM orders WHERE customer_id = $1', [4201 + i])
      assert.equal(byCustomer.rows.length, 3)
      const byProduct = await pool.query({
        name: 'by_product',
        text: 'SELECT * FROM orders WHERE product_id = $1',
        values: [701 + i],
      })
      assert.equal(byProduct.rows.length, 30)
      const byId = await pool.query('SELECT * FROM orders WHERE id = $1', [9001 + i])
      assert.equal(byId.rows.length, 1)
    }

    const deadline = Date.now() + 30_000
    while (readRecords().records.size < 2 && Date.now() < deadline) await sleep(200)
    await sleep(2000) // a late record for the primary-key lookup would show by now
    const { records, text } = readRecords()
    assert.equal(records.size, 2, `expected 2 records, file:\n${text}\nlog:\n${env.logTail(30)}`)

    const byColumn = new Map([...records.values()].map((r) => [JSON.stringify(r.columns), r]))
    for (const [column, values] of [
      ['customer_id', [4201, 4205, 4210]],
      ['product_id', [701, 705, 710]],
    ]) {
      const record = byColumn.get(JSON.stringify([column]))
      assert.ok(record, `no record with columns ["${column}"]; file:\n${text}`)
      assert.equal(record.database, 'app')
      assert.equal(record.table, 'public.orders')
      assert.equal(noSpaces(record.ddl), noSpaces(`CREATE INDEX CONCURRENTLY ON public.orders (${column})`))
      assert.equal(record.reason, 'filter')
      assert.equal(record.judged_by, 'estimate')
      assert.match(record.query, new RegExp(`${column}\\s*=\\s*\\$1`))
      for (const v of values) assert.ok(!record.query.includes(String(v)), `value ${v} in ${record.query}`)
      assert.ok(record.calls >= MIN_CALLS && record.calls <= CALLS, `calls ${record.calls}`)
      assert.match(record.first_seen, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/)
      assert.match(record.last_seen, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/)
    }
    assert.deepEqual(pool.idleErrors, [])
  }
)
