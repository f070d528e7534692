/**
 * Real web servers for the probe benchmark: nginx, Apache httpd, HAProxy (in front of a small
 * loopback backend) and lighttpd, each started from its installed binary on a free 127.0.0.1 port
 * with a minimal configuration written to a temporary directory, in the foreground (a child
 * process, never a daemon), and stopped afterwards.
 *
 * Only `npm run bench:probe` uses this; `npm test` never does, since the servers may not be
 * installed. Every server also stops by itself: it runs under coreutils `timeout` (when present)
 * with a bounded lifetime, so a benchmark that dies cannot leave one running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, chmodSync, constants, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { HEALTH_PATH, nodeHttpServer, type TestServer } from './servers';

/** The body every static server returns for the health path. */
export const REAL_HEALTH_BODY = '{"status":"ok"}\n';
/** Body limit configured on the servers that have one: the probe's default oversized POST is one byte over. */
export const REAL_BODY_LIMIT = 1024 * 1024;

export type RealServerName = 'nginx' | 'apache' | 'haproxy' | 'lighttpd';

export interface RealServer extends TestServer {
  readonly name: RealServerName;
  /** The binary's own version line. */
  readonly version: string;
  /** What serves the answers (static files, or the backend behind a proxy). */
  readonly serves: string;
}

interface Spec {
  readonly name: RealServerName;
  readonly binaries: readonly string[];
  readonly versionArgs: readonly string[];
  readonly serves: string;
  /** Writes the configuration and returns the arguments that run the server in the foreground. */
  configure(dir: string, port: number, backendPort: number | undefined, binary: string): string[];
  /** Needs a backend (a proxy). */
  readonly backend?: boolean;
}

const APACHE_MODULES = ['/usr/lib/apache2/modules', '/usr/lib64/httpd/modules', '/usr/libexec/apache2', '/usr/local/apache2/modules'];

const SPECS: readonly Spec[] = [
  {
    name: 'nginx',
    binaries: ['nginx'],
    versionArgs: ['-v'],
    serves: 'static files',
    configure(dir, port) {
      for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(join(dir, 'tmp', sub), { recursive: true });
      const conf = join(dir, 'nginx.conf');
      // Defaults kept wherever they matter to the probe: keep-alive, client_max_body_size 1m,
      // keepalive_requests, TRACE handling. One process, so that nothing forks away from us.
      writeFileSync(
        conf,
        `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp/body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port};
    root ${dir}/www;
    location = ${HEALTH_PATH} { default_type application/json; }
  }
}
`,
      );
      return ['-e', join(dir, 'error.log'), '-p', dir, '-c', conf];
    },
  },
  {
    name: 'apache',
    binaries: ['apache2', 'httpd'],
    versionArgs: ['-v'],
    serves: 'static files',
    configure(dir, port) {
      const modules = APACHE_MODULES.find((m) => existsSync(join(m, 'mod_mpm_event.so')));
      if (!modules) throw new Error(`no Apache modules directory with mod_mpm_event.so (looked in ${APACHE_MODULES.join(', ')})`);
      mkdirSync(join(dir, 'run'), { recursive: true });
      writeFileSync(join(dir, 'mime.types'), 'application/json json\ntext/html html\n');
      const conf = join(dir, 'httpd.conf');
      // Apache's defaults otherwise: KeepAlive On, MaxKeepAliveRequests 100, TraceEnable On.
      writeFileSync(
        conf,
        `ServerRoot "${dir}"
DefaultRuntimeDir "${dir}/run"
PidFile "${dir}/run/httpd.pid"
Listen 127.0.0.1:${port}
ServerName 127.0.0.1
LoadModule mpm_event_module ${modules}/mod_mpm_event.so
LoadModule authz_core_module ${modules}/mod_authz_core.so
LoadModule mime_module ${modules}/mod_mime.so
ErrorLog "${dir}/error.log"
LogLevel warn
TypesConfig "${dir}/mime.types"
LimitRequestBody ${REAL_BODY_LIMIT}
DocumentRoot "${dir}/www"
<Directory "${dir}/www">
  Require all granted
</Directory>
<Files "${HEALTH_PATH.slice(1)}">
  ForceType application/json
</Files>
`,
      );
      return ['-f', conf, '-DFOREGROUND'];
    },
  },
  {
    name: 'haproxy',
    binaries: ['haproxy'],
    versionArgs: ['-v'],
    serves: 'in front of a loopback node:http backend running the test app',
    backend: true,
    configure(dir, port, backendPort) {
      const conf = join(dir, 'haproxy.cfg');
      // HTTP mode with keep-alive on both sides (HAProxy's default), and bounded timeouts.
      writeFileSync(
        conf,
        `global
  maxconn 1024
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  timeout http-keep-alive 10s
frontend probe
  bind 127.0.0.1:${port}
  default_backend app
backend app
  server app1 127.0.0.1:${backendPort}
`,
      );
      return ['-db', '-f', conf];
    },
  },
  {
    name: 'lighttpd',
    binaries: ['lighttpd'],
    versionArgs: ['-v'],
    serves: 'static files',
    configure(dir, port) {
      const conf = join(dir, 'lighttpd.conf');
      writeFileSync(
        conf,
        `server.document-root = "${dir}/www"
server.bind = "127.0.0.1"
server.port = ${port}
server.errorlog = "${dir}/error.log"
server.max-request-size = ${REAL_BODY_LIMIT / 1024}
mimetype.assign = ( "" => "application/json" )
`,
      );
      return ['-D', '-f', conf];
    },
  },
];

export const REAL_SERVER_NAMES: readonly RealServerName[] = SPECS.map((s) => s.name);

/** Finds an executable on PATH or in the usual sbin directories (servers live there, off a user's PATH). */
export function findBinary(names: readonly string[]): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin', '/usr/bin', '/usr/local/bin'].filter((d) => d !== '');
  for (const name of names) {
    for (const d of dirs) {
      const file = join(d, name);
      try {
        accessSync(file, constants.X_OK);
        return file;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

/** Where each real server's binary is, or undefined when it is not installed. */
export function installedRealServers(): Array<{ readonly name: RealServerName; readonly binary: string | undefined }> {
  return SPECS.map((s) => ({ name: s.name, binary: findBinary(s.binaries) }));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => finish(false), 500);
    function finish(ok: boolean): void {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    }
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

function runForOutput(binary: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', () => undefined);
    child.on('close', () => {
      clearTimeout(timer);
      resolve(out.trim().split('\n')[0] ?? '');
    });
  });
}

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Children still running, killed if this process exits without stopping them. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Starts `name` on a free loopback port. Throws when it is not installed or does not come up
 * within 10 s (with the end of its output). `lifetimeS` bounds how long it may run at all.
 */
export async function startRealServer(name: RealServerName, lifetimeS = 900): Promise<RealServer> {
  const spec = SPECS.find((s) => s.name === name);
  if (!spec) throw new Error(`unknown server ${name}`);
  const binary = findBinary(spec.binaries);
  if (!binary) throw new Error(`${name} is not installed (looked for ${spec.binaries.join(', ')})`);
  const version = await runForOutput(binary, spec.versionArgs);

  const dir = mkdtempSync(join(tmpdir(), `cutover-probe-${name}-`));
  // Workers of servers started as root drop to an unprivileged user: let them read the files.
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'www'));
  writeFileSync(join(dir, 'www', HEALTH_PATH.slice(1)), REAL_HEALTH_BODY);
  chmodSync(join(dir, 'www'), 0o755);

  let backend: TestServer | undefined;
  const cleanup = async (): Promise<void> => {
    await backend?.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    if (spec.backend) backend = await nodeHttpServer();
    const port = await freePort();
    const args = spec.configure(dir, port, backend ? Number(new URL(backend.url).port) : undefined, binary);
    const timeout = findBinary(['timeout']);
    const [command, commandArgs] = timeout
      ? [timeout, ['--signal=TERM', '--kill-after=5', String(lifetimeS), binary, ...args]]
      : [binary, args];
    const child = spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
    running.add(child);
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-2000)));
    child.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-2000)));
    child.on('error', (error) => (output += `\n${error.message}`));
    child.on('exit', () => running.delete(child));

    const stop = async (): Promise<void> => {
      child.kill('SIGTERM');
      if (!(await waitForExit(child, 5000))) {
        child.kill('SIGKILL');
        await waitForExit(child, 2000);
      }
      running.delete(child);
    };
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      if (child.exitCode !== null || child.signalCode !== null) break;
      up = await canConnect(port);
      if (!up) await new Promise((r) => setTimeout(r, 100));
    }
    if (!up) {
      await stop();
      throw new Error(`${name} did not start on 127.0.0.1:${port}: ${output.trim().split('\n').slice(-3).join(' | ') || 'no output'}`);
    }
    return {
      name,
      version,
      serves: spec.serves,
      url: `http://127.0.0.1:${port}`,
      close: async () => {
        await stop();
        await cleanup();
      },
    };
  } catch (error) {
    await cleanup();
    throw error;
  }
}
