// node-postgres over TLS to pgmux (issue 7): `ssl: { rejectUnauthorized: false }`, and
// full verification with the test's own CA; plaintext refused with client_tls_sslmode =
// require. The CA and certificates are made here with the openssl command.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { useEnvironment, VIA_PGMUX } from './harness.mjs'

const dir = mkdtempSync('/tmp/pgmux-node-tls-')
process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
const file = (name) => path.join(dir, name)

function openssl(...args) {
  const r = spawnSync('openssl', args, { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`)
}
const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
for (const ca of ['ca', 'other_ca']) {
  openssl('req', '-x509', ...ec, '-keyout', file(`${ca}.key`), '-out', file(`${ca}.crt`), '-days', '2',
    '-subj', `/CN=pgmux node ${ca}`)
}
writeFileSync(file('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n')
openssl('req', ...ec, '-keyout', file('server.key'), '-out', file('server.csr'), '-subj', '/CN=localhost')
openssl('x509', '-req', '-in', file('server.csr'), '-CA', file('ca.crt'), '-CAkey', file('ca.key'),
  '-CAcreateserial', '-out', file('server.crt'), '-days', '2', '-extfile', file('server.ext'))

const env = useEnvironment({
  pgmuxExtra: VIA_PGMUX
    ? `client_tls_sslmode = "require"
client_tls_cert_file = "${file('server.crt')}"
client_tls_key_file = "${file('server.key')}"`
    : '',
})

const skip = VIA_PGMUX ? false : 'the reference PostgreSQL of the harness has ssl off'

test('ssl without verification: encrypted, queries, prepared statements, 2 MB result', { skip }, async () => {
  const c = await env.client({ ssl: { rejectUnauthorized: false } })
  assert.equal(c.connection.stream.encrypted, true)
  assert.equal((await c.query('SELECT 40 + 2 AS n')).rows[0].n, 42)
  const named = { name: 'tls_named', text: 'SELECT $1::int * 2 AS n', values: [21] }
  assert.equal((await c.query(named)).rows[0].n, 42)
  assert.equal((await c.query({ ...named, values: [50] })).rows[0].n, 100)
  const big = await c.query("SELECT i, repeat('x', 1000) AS pad FROM generate_series(1, 2000) i")
  assert.equal(big.rows.length, 2000)
  assert.equal(big.rows[1999].i, 2000)
  assert.equal(big.rows[1999].pad.length, 1000)
  await c.end()
})

test('ssl verified against the CA, host name checked', { skip }, async () => {
  const c = await env.client({ ssl: { ca: readFileSync(file('ca.crt'), 'utf8') } })
  assert.equal((await c.query("SELECT 'verified' AS v")).rows[0].v, 'verified')
  await c.end()
})

test('ssl with the wrong CA fails', { skip }, async () => {
  await assert.rejects(
    env.client({ ssl: { ca: readFileSync(file('other_ca.crt'), 'utf8') } }),
    (err) => /self[- ]signed|unable to verify|certificate/i.test(err.message)
  )
})

test('plaintext refused with SQLSTATE 28000', { skip }, async () => {
  await assert.rejects(env.client({ ssl: false }), (err) => {
    assert.equal(err.code, '28000')
    assert.match(err.message, /SSL required/)
    return true
  })
})
