// Test harness for the node-postgres suite: a throwaway PostgreSQL 15 primary
// (scripts/pg-cluster) and a pgmux in front of it, in transaction mode.
//
//   import { useEnvironment } from './harness.mjs'
//   const env = useEnvironment()          // registers before()/after() for this file
//   test('...', async () => { const pool = env.pool({ max: 10 }); ... })
//
// Each test file gets its own cluster and its own pgmux, started in before() and
// stopped in after() (also when tests fail). A crashed or killed node process does not
// leave servers behind: pg-cluster --watch-pid stops the cluster, and a detached watcher
// kills pgmux, once this process is gone.
//
// Environment:
//   PGMUX_BINARY       the pgmux executable (set by CTest); default build/pooler/pgmux
//   PGMUX_SOURCE_DIR   the repository root (for scripts/pg-cluster); default ../..
//   PGMUX_NODE_TARGET  "pgmux" (default) or "postgres": run the same tests directly
//                      against PostgreSQL, the reference behaviour (no pgmux started)
//   PGMUX_NODE_RUN_BUGS=1  also run the tests skipped as pgmux bugs (skip: bug('BUG: ...'))
//   PGMUX_NODE_KEEP=1  keep the work directory (pgmux config and log) after the run
//   PGMUX_NODE_LOG_LEVEL  pgmux log_level (default "info")

import { spawn, execFile, spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdtempSync, openSync, closeSync, readFileSync, writeFileSync, rmSync } from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { before, after } from 'node:test'

const execFileP = promisify(execFile)
const HERE = path.dirname(fileURLToPath(import.meta.url))

// node-postgres is installed by `npm ci` in tests/node (scripts/test does it). Without it
// every test file fails here, with a message that says what to do.
let pgModule
try {
  pgModule = (await import('pg')).default
} catch (err) {
  throw new Error(
    `node-postgres ('pg') is not installed in ${HERE}/node_modules: run \`npm ci\` ` +
      `(or \`npm install\`) in ${HERE} first (${err.code ?? err.message})`
  )
}
export const pg = pgModule

export const SOURCE_DIR = path.resolve(process.env.PGMUX_SOURCE_DIR || path.join(HERE, '..', '..'))
export const TARGET = process.env.PGMUX_NODE_TARGET || 'pgmux'
if (TARGET !== 'pgmux' && TARGET !== 'postgres') {
  throw new Error(`PGMUX_NODE_TARGET must be "pgmux" or "postgres", not "${TARGET}"`)
}
export const VIA_PGMUX = TARGET === 'pgmux'

export const POOL_SIZE = 5

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function pgmuxBinary() {
  const bin = process.env.PGMUX_BINARY || path.join(SOURCE_DIR, 'build', 'pooler', 'pgmux')
  if (!existsSync(bin)) {
    throw new Error(`pgmux binary ${bin} not found (set PGMUX_BINARY; CTest sets it to the built target)`)
  }
  return bin
}

function parseEnvFile(file) {
  const out = {}
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z_]+)='(.*)'$/.exec(line)
    if (m) out[m[1]] = m[2]
  }
  return out
}

function tail(file, lines = 40) {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n')
  } catch {
    return `(cannot read ${file})`
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

function canConnect(port) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port })
    sock.once('connect', () => {
      sock.destroy()
      resolve(true)
    })
    sock.once('error', () => resolve(false))
  })
}

// Runs `n` calls of fn(i) concurrently and returns their results in order.
export function parallel(n, fn) {
  return Promise.all(Array.from({ length: n }, (_, i) => fn(i)))
}

// Runs fn(i) for i in [0, n) with at most `limit` in flight at once.
export async function withLimit(n, limit, fn) {
  const results = new Array(n)
  let next = 0
  await parallel(Math.min(limit, n), async () => {
    while (next < n) {
      const i = next++
      results[i] = await fn(i)
    }
  })
  return results
}

class Environment {
  constructor(options = {}) {
    this.withReplica = Boolean(options.replica) // a streaming replica, listed in `replicas`
    // TOML appended to pgmux's config (more tables, e.g. [index_advice]): a string, or a
    // function of this environment (called once workDir exists, for paths inside it).
    this.extraConfig = options.extraConfig ?? ''
    this.pgmuxExtra = options.pgmuxExtra || '' // more [pgmux] lines (TOML)
    this.workDir = null
    this.clusterDir = null
    this.cluster = null // parsed cluster.env
    this.pgmux = null // ChildProcess
    this.pgmuxExit = null // {code, signal} once it exited
    this.watcher = null
    this.port = null // where clients connect: pgmux, or PostgreSQL with PGMUX_NODE_TARGET=postgres
    this.logPath = null
    this.configPath = null
    this.pools = new Set()
    this.clients = new Set()
    this.admin = null
    this.stopped = false
    this.onExit = () => this.stopSync()
  }

  // Connection settings for pg.Client / pg.Pool, with overrides.
  config(overrides = {}) {
    return {
      host: '127.0.0.1',
      port: this.port,
      user: 'app',
      password: 'secret',
      database: 'app',
      connectionTimeoutMillis: 20000,
      ...overrides,
    }
  }

  // A pg.Pool through pgmux, ended in after(). Errors on idle clients are collected in
  // pool.idleErrors instead of crashing the process.
  pool(overrides = {}) {
    const pool = new pg.Pool(this.config(overrides))
    pool.idleErrors = []
    pool.on('error', (err) => pool.idleErrors.push(err))
    this.pools.add(pool)
    const end = pool.end.bind(pool)
    pool.end = async () => {
      this.pools.delete(pool)
      if (!pool.ended && !pool.ending) await end()
    }
    return pool
  }

  // A connected pg.Client through pgmux, ended in after() unless ended earlier.
  // `beforeConnect(client)` runs before connect() (to attach protocol listeners).
  async client(overrides = {}, beforeConnect = null) {
    const client = new pg.Client(this.config(overrides))
    client.errors = []
    client.on('error', (err) => client.errors.push(err))
    if (beforeConnect) beforeConnect(client)
    await client.connect()
    this.clients.add(client)
    const end = client.end.bind(client)
    client.end = async () => {
      this.clients.delete(client)
      await end()
    }
    return client
  }

  // A query as superuser directly on PostgreSQL (never through pgmux): for checks of
  // what really happened on the server (rows committed, backends open).
  async adminQuery(text, values) {
    if (!this.admin) {
      this.admin = new pg.Client({
        host: '127.0.0.1',
        port: Number(this.cluster.PRIMARY_PORT),
        user: 'postgres',
        password: 'postgres',
        database: 'app',
      })
      this.admin.on('error', () => {})
      await this.admin.connect()
    }
    return this.admin.query(text, values)
  }

  // Backends the pool opened on PostgreSQL for user app (the admin connection is
  // postgres, so it is not counted).
  async appBackends() {
    const r = await this.adminQuery(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'app' AND backend_type = 'client backend'"
    )
    return r.rows[0].n
  }

  pgmuxAlive() {
    return this.pgmux !== null && this.pgmuxExit === null
  }

  logTail(lines = 40) {
    return this.logPath ? tail(this.logPath, lines) : '(no pgmux log)'
  }

  async start() {
    process.on('exit', this.onExit)
    try {
      if (VIA_PGMUX) pgmuxBinary() // fail before the cluster is started
      await this.startCluster()
      if (VIA_PGMUX) {
        await this.startPgmux()
      } else {
        this.port = Number(this.cluster.PRIMARY_PORT)
      }
    } catch (err) {
      await this.stop().catch(() => {})
      throw err
    }
  }

  async startCluster() {
    // Short path under /tmp: the postgres user must reach it, and the Unix socket path
    // DIR/sock/.s.PGSQL.N must stay under 107 bytes.
    this.workDir = mkdtempSync('/tmp/pgmux-node-')
    chmodSync(this.workDir, 0o711) // run as root, the servers run as postgres and must enter it
    this.clusterDir = path.join(this.workDir, 'pg')
    const script = path.join(SOURCE_DIR, 'scripts', 'pg-cluster')
    try {
      const replica = this.withReplica ? [] : ['--no-replica']
      await execFileP(script, ['start', this.clusterDir, ...replica, '--watch-pid', String(process.pid)], {
        timeout: 120_000,
      })
    } catch (err) {
      throw new Error(`scripts/pg-cluster start failed: ${err.stderr || err.message}`)
    }
    this.cluster = parseEnvFile(path.join(this.clusterDir, 'cluster.env'))
    if (!this.cluster.PRIMARY_PORT) throw new Error(`no PRIMARY_PORT in ${this.clusterDir}/cluster.env`)
  }

  writeConfig(port) {
    const text = `# written by tests/node/harness.mjs
[pgmux]
listen = "127.0.0.1:${port}"
workers = 1
log_level = "${process.env.PGMUX_NODE_LOG_LEVEL || 'info'}"
shutdown_timeout = 2
stats_period = 0
${this.pgmuxExtra}

[databases.app]
primary = "127.0.0.1:${this.cluster.PRIMARY_PORT}"
${this.withReplica ? `replicas = ["127.0.0.1:${this.cluster.REPLICA_PORT}"]\nhealth_check_period = 0.1` : ''}
pool_mode = "transaction"
pool_size = ${POOL_SIZE}

[users.app]
password = "secret"
auth = "scram-sha-256"
${typeof this.extraConfig === 'function' ? this.extraConfig(this) : this.extraConfig}
`
    this.configPath = path.join(this.workDir, 'pgmux.toml')
    writeFileSync(this.configPath, text)
  }

  async startPgmux() {
    const bin = pgmuxBinary()
    this.logPath = path.join(this.workDir, 'pgmux.log')
    // The port is free when chosen but may be taken before pgmux binds it: retry.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort()
      this.writeConfig(port)
      const logFd = openSync(this.logPath, 'a')
      const child = spawn(bin, ['--config', this.configPath], { stdio: ['ignore', logFd, logFd] })
      closeSync(logFd)
      this.pgmux = child
      this.pgmuxExit = null
      const exited = new Promise((resolve) => {
        child.once('exit', (code, signal) => {
          this.pgmuxExit = { code, signal }
          resolve()
        })
        child.once('error', (err) => {
          this.pgmuxExit = { code: null, signal: null, error: err }
          resolve()
        })
      })
      this.pgmuxExited = exited
      this.startWatcher(child.pid)
      const deadline = Date.now() + 15_000
      while (this.pgmuxExit === null && Date.now() < deadline) {
        if (await canConnect(port)) {
          this.port = port
          return
        }
        await sleep(50)
      }
      const log = this.logTail(20)
      if (this.pgmuxExit === null) {
        await this.stopPgmux()
        throw new Error(`pgmux did not accept connections on 127.0.0.1:${port} within 15 s; log:\n${log}`)
      }
      if (attempt < 3 && /in use/i.test(log)) continue
      const how = this.pgmuxExit.error
        ? this.pgmuxExit.error.message
        : `exit code ${this.pgmuxExit.code}, signal ${this.pgmuxExit.signal}`
      throw new Error(`pgmux exited at startup (${how}); config ${this.configPath}; log:\n${log}`)
    }
  }

  // Kills pgmux if this node process dies without running after() (e.g. CTest timeout).
  startWatcher(pgmuxPid) {
    const script =
      'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done; ' +
      'kill -0 "$2" 2>/dev/null && kill -KILL "$2" 2>/dev/null; exit 0'
    const w = spawn('bash', ['-c', script, 'pgmux-node-watch', String(process.pid), String(pgmuxPid)], {
      detached: true,
      stdio: 'ignore',
    })
    w.unref()
    this.watcher = w
  }

  stopWatcher() {
    if (this.watcher && this.watcher.exitCode === null && this.watcher.signalCode === null) {
      try {
        this.watcher.kill('SIGKILL')
      } catch {}
    }
    this.watcher = null
  }

  async stopPgmux() {
    const child = this.pgmux
    if (child && this.pgmuxExit === null) {
      child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), 5000)
      await this.pgmuxExited
      clearTimeout(t)
    }
    this.stopWatcher()
  }

  async stop() {
    if (this.stopped) return
    this.stopped = true
    const problems = []
    const crashed = this.pgmux !== null && this.pgmuxExit !== null
    if (crashed) {
      problems.push(
        `pgmux exited during the tests (exit code ${this.pgmuxExit.code}, signal ${this.pgmuxExit.signal}); ` +
          `log tail:\n${this.logTail(40)}`
      )
    }
    for (const c of [...this.clients]) {
      await Promise.race([c.end().catch(() => {}), sleep(2000)])
    }
    for (const p of [...this.pools]) {
      await Promise.race([p.end().catch(() => {}), sleep(2000)])
    }
    if (this.admin) {
      await Promise.race([this.admin.end().catch(() => {}), sleep(2000)])
      this.admin = null
    }
    await this.stopPgmux()
    if (this.clusterDir) {
      try {
        await execFileP(path.join(SOURCE_DIR, 'scripts', 'pg-cluster'), ['stop', this.clusterDir, '--rm'], {
          timeout: 60_000,
        })
      } catch (err) {
        problems.push(`scripts/pg-cluster stop failed: ${err.stderr || err.message}`)
      }
    }
    if (this.workDir && !process.env.PGMUX_NODE_KEEP && !crashed) {
      rmSync(this.workDir, { recursive: true, force: true })
    } else if (this.workDir) {
      process.stderr.write(`harness: kept ${this.workDir} (pgmux config and log)\n`)
    }
    process.removeListener('exit', this.onExit)
    if (problems.length) throw new Error(problems.join('\n'))
  }

  // Last resort on process exit: nothing asynchronous may run here.
  stopSync() {
    if (this.stopped) return
    this.stopped = true
    if (this.pgmux && this.pgmuxExit === null) {
      try {
        this.pgmux.kill('SIGKILL')
      } catch {}
    }
    this.stopWatcher()
    if (this.clusterDir) {
      spawnSync(path.join(SOURCE_DIR, 'scripts', 'pg-cluster'), ['stop', this.clusterDir, '--rm'], {
        stdio: 'ignore',
        timeout: 60_000,
      })
    }
    if (this.workDir && !process.env.PGMUX_NODE_KEEP) rmSync(this.workDir, { recursive: true, force: true })
  }
}

// Registers before()/after() hooks that start and stop an environment for the calling
// test file, and returns it (its fields are set once before() has run). Options:
// `replica` (a streaming replica too), `extraConfig` (TOML appended to pgmux's config),
// `pgmuxExtra` (lines added to [pgmux]).
export function useEnvironment(options = {}) {
  const env = new Environment(options)
  before(() => env.start(), { timeout: 180_000 })
  after(() => env.stop(), { timeout: 120_000 })
  return env
}

// Skip reason for a test that shows a pgmux bug: `test(name, { skip: bug('BUG: ...') }, fn)`.
// Such tests still run against PostgreSQL (PGMUX_NODE_TARGET=postgres), where they must
// pass, and through pgmux with PGMUX_NODE_RUN_BUGS=1 (to check a fix).
export function bug(reason) {
  return !VIA_PGMUX || process.env.PGMUX_NODE_RUN_BUGS ? false : reason
}

// Asserts that `promise` rejects with a PostgreSQL error of SQLSTATE `code`.
export async function rejectsWithCode(promise, code, what = 'query') {
  let err = null
  try {
    await promise
  } catch (e) {
    err = e
  }
  if (err === null) throw new Error(`${what}: expected SQLSTATE ${code}, but it succeeded`)
  if (err.code !== code) {
    throw new Error(`${what}: expected SQLSTATE ${code}, got ${err.code ?? 'no code'}: ${err.message}`)
  }
  return err
}
