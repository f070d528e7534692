/**
 * Where a probe goes and what it says it is: the base URL, an optional address to connect to
 * instead of the URL's host (`connectTo`), the TLS settings and the extra headers every request
 * carries. Kept apart from the engine, with no import but the usage error, so that configuration
 * readers (the probe function's environment, the CLI) can validate a target with the same rules
 * without loading the probe.
 */
import { isIP } from 'node:net';
import { ProbeUsageError } from './errors';

/** An HTTP token (RFC 9110 §5.6.2): what a header name or a method may hold. */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A header value: tab, printable ASCII and obs-text; no CR, LF, NUL or other control characters. */
export const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
/** Headers the probe sets itself: a user value would break framing or the connection's reuse. */
export const RESERVED_HEADERS: ReadonlySet<string> = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'expect',
  'upgrade',
  'te',
  'trailer',
  'x-probe-id',
  // The probe marker (marker.ts): every probe request carries it already.
  'x-cutover-probe',
]);

/** Most extra headers a target may add, and their sizes (they go into every request's head). */
export const MAX_TARGET_HEADERS = 20;
const MAX_HEADER_NAME = 256;
const MAX_HEADER_VALUE = 4096;

/** Certificate authorities to trust, as Node's `tls.connect({ ca })` takes them. */
export type TrustedCa = string | Buffer | ReadonlyArray<string | Buffer>;

/** Where to connect, and how to speak there. */
export interface Target {
  readonly protocol: 'http:' | 'https:';
  /** Host name or IP address to connect to (IPv6 without brackets): `connectTo`'s, else the URL's. */
  readonly hostname: string;
  /** Port to connect to: `connectTo`'s, else the URL's. */
  readonly port: number;
  /** Value of the Host header: always the URL's host (and port, when not the default). */
  readonly hostHeader: string;
  /** Path prefix from the base URL, without a trailing slash ('' for the root). */
  readonly basePath: string;
  /** TLS only: the server name sent by SNI (none for an IP address). */
  readonly servername?: string;
  /**
   * TLS only: the name the server certificate is checked against (Node's `checkServerIdentity`):
   * `servername` when given, else the URL's host name, never the `connectTo` address.
   */
  readonly certName: string;
  readonly rejectUnauthorized: boolean;
  /** TLS only: certificate authorities to trust instead of Node's default ones. */
  readonly ca?: TrustedCa;
  /** The `connectTo` address as given (normalised), when the probe connects elsewhere than the URL's host. */
  readonly connectTo?: string;
  /** Extra headers every request carries, in the given order. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
}

/** What `parseTarget` takes besides the URL. */
export interface TargetOptions {
  readonly rejectUnauthorized: boolean;
  readonly servername?: string;
  readonly ca?: TrustedCa;
  readonly connectTo?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** A validated `connectTo`: the host (IPv6 without brackets) and the port, when one was given. */
export interface ConnectAddress {
  readonly host: string;
  readonly port?: number;
}

const DNS_LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/**
 * Parses a `connectTo` value: a host name, an IPv4 address or an IPv6 address in brackets, with an
 * optional `:port` from 1 to 65535 (`alb-new-123.eu-west-1.elb.amazonaws.com`, `10.0.3.7:8443`,
 * `[2001:db8::7]:443`). No scheme, path, user name or spaces. Throws `ProbeUsageError` naming the
 * value and what is wrong with it.
 */
export function parseConnectTo(value: unknown, what = 'connectTo'): ConnectAddress {
  const shown = JSON.stringify(value);
  const fail = (why: string): never => {
    throw new ProbeUsageError(`${what} must be a host name or IP address with an optional :port (IPv6 in brackets)${why ? `; ${why}` : ''}, got ${shown}`);
  };
  if (typeof value !== 'string') return fail('');
  const text = value.trim();
  if (text === '') return fail('it is empty');
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(text)) return fail('give no scheme (the URL says http or https)');
  if (/[/?#@\s\\]/.test(text)) return fail('give no path, query, user name or spaces');
  let host: string;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end < 0) return fail('the IPv6 address has no closing bracket');
    host = text.slice(1, end);
    const rest = text.slice(end + 1);
    if (rest !== '' && !rest.startsWith(':')) return fail('only :port may follow the bracketed address');
    if (rest !== '') portText = rest.slice(1);
    if (isIP(host) !== 6) return fail(`${JSON.stringify(host)} is not an IPv6 address`);
  } else {
    const colons = text.split(':').length - 1;
    if (colons > 1) return fail('write an IPv6 address in brackets, as in [2001:db8::1]:443');
    const colon = text.indexOf(':');
    host = colon < 0 ? text : text.slice(0, colon);
    if (colon >= 0) portText = text.slice(colon + 1);
    if (/^[0-9.]+$/.test(host)) {
      if (isIP(host) !== 4) return fail(`${JSON.stringify(host)} is not an IPv4 address`);
    } else {
      const name = host.endsWith('.') ? host.slice(0, -1) : host;
      if (name.length === 0 || name.length > 253 || !name.split('.').every((label) => DNS_LABEL.test(label))) {
        return fail(`${JSON.stringify(host)} is not a host name`);
      }
    }
  }
  if (portText === undefined) return { host };
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    return fail(`the port must be a whole number from 1 to 65535`);
  }
  return { host, port: Number(portText) };
}

/**
 * Validates the extra headers a target adds to every request: an object of strings, names HTTP
 * tokens, values without CR, LF or other control characters, at most `MAX_TARGET_HEADERS`, none
 * of the headers the probe sets itself (Host, Content-Length, Transfer-Encoding, Connection, …) and
 * no name twice in different case. Returns them as name/value pairs in the given order.
 */
export function checkTargetHeaders(headers: unknown, what = 'headers'): Array<[string, string]> {
  if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) {
    throw new ProbeUsageError(`${what} must be an object of header names and string values, got ${describe(headers)}`);
  }
  const entries = Object.entries(headers as Record<string, unknown>);
  if (entries.length > MAX_TARGET_HEADERS) throw new ProbeUsageError(`${what}: at most ${MAX_TARGET_HEADERS} headers, got ${entries.length}`);
  const seen = new Set<string>();
  return entries.map(([name, value]) => {
    if (!TOKEN.test(name) || name.length > MAX_HEADER_NAME) throw new ProbeUsageError(`${what}: invalid header name ${JSON.stringify(name)} (an HTTP token: letters, digits and !#$%&'*+-.^_\`|~)`);
    const lower = name.toLowerCase();
    if (RESERVED_HEADERS.has(lower)) throw new ProbeUsageError(`${what}: header ${JSON.stringify(name)} is set by the probe and cannot be given`);
    if (seen.has(lower)) throw new ProbeUsageError(`${what}: header ${JSON.stringify(name)} is given twice`);
    seen.add(lower);
    if (typeof value !== 'string' || !HEADER_VALUE.test(value) || value.length > MAX_HEADER_VALUE) {
      throw new ProbeUsageError(`${what}: header ${JSON.stringify(name)} must be a string of at most ${MAX_HEADER_VALUE} characters without CR, LF or other control characters, got ${describe(value)}`);
    }
    return [name, value];
  });
}

/** Parses and checks the base URL and what goes with it. Throws `ProbeUsageError` naming the bad value. */
export function parseTarget(baseUrl: string, options: TargetOptions): Target {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new ProbeUsageError(`base URL must be an absolute http:// or https:// URL, got ${JSON.stringify(baseUrl)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ProbeUsageError(`base URL must use http: or https:, got ${JSON.stringify(url.protocol)} in ${JSON.stringify(baseUrl)}`);
  }
  if (url.username || url.password) {
    throw new ProbeUsageError(`base URL must not carry credentials, got ${JSON.stringify(url.origin)} with a user name`);
  }
  if (url.search || url.hash) {
    throw new ProbeUsageError(`base URL must not have a query or fragment (put them in the step paths), got ${JSON.stringify(baseUrl)}`);
  }
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  // URL keeps IPv6 literals in brackets; sockets and certificate checks want them bare.
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (options.servername !== undefined && !/^[A-Za-z0-9.-]{1,253}$/.test(options.servername)) {
    throw new ProbeUsageError(`servername must be a DNS name, got ${JSON.stringify(options.servername)}`);
  }
  const connect = options.connectTo !== undefined ? parseConnectTo(options.connectTo) : undefined;
  const headers = options.headers !== undefined ? checkTargetHeaders(options.headers) : [];
  const servername = options.servername ?? (isIP(hostname) ? undefined : hostname);
  return {
    protocol: url.protocol,
    hostname: connect?.host ?? hostname,
    port: connect?.port ?? port,
    hostHeader: url.host,
    basePath: url.pathname.replace(/\/+$/, ''),
    ...(servername !== undefined ? { servername } : {}),
    certName: options.servername ?? hostname,
    rejectUnauthorized: options.rejectUnauthorized,
    ...(options.ca !== undefined ? { ca: options.ca } : {}),
    ...(connect ? { connectTo: formatAddress(connect.host, connect.port) } : {}),
    headers,
  };
}

/** `host:port`, IPv6 in brackets; the host alone without a port. */
export function formatAddress(host: string, port?: number): string {
  const shown = isIP(host) === 6 ? `[${host}]` : host;
  return port === undefined ? shown : `${shown}:${port}`;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 80 ? `${text.slice(0, 80)}…` : text;
}
