/**
 * A loopback HTTP server that answers like an AWS service endpoint with a scripted sequence of
 * failures (throttling, 5XX, no answer at all) and successes, so that tests can watch the real SDK
 * clients — signing, retry strategy, timeouts — do their work over a socket.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** Wire protocol of a service, which decides how errors are written. */
export type Protocol = 'rest-json' | 'json' | 'query';

/** What the server does with one request. */
export type Reply =
  | { readonly kind: 'throttle' }
  | { readonly kind: '5xx' }
  | { readonly kind: 'hang' }
  | { readonly kind: 'ok'; readonly body: unknown; readonly status?: number };

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  /** The SDK's retry header, e.g. "attempt=2; max=3". */
  readonly attempt: string;
  readonly target: string;
  readonly body: string;
}

export interface FakeAws {
  readonly endpoint: string;
  readonly requests: SeenRequest[];
  close(): Promise<void>;
}

/** Error code and HTTP status of a throttling answer, as each protocol's services send it. */
const THROTTLE: Record<Protocol, { status: number; code: string }> = {
  'rest-json': { status: 429, code: 'TooManyRequestsException' },
  json: { status: 400, code: 'ThrottlingException' },
  query: { status: 400, code: 'Throttling' },
};
const SERVER_ERROR: Record<Protocol, { status: number; code: string }> = {
  'rest-json': { status: 500, code: 'ServiceException' },
  json: { status: 500, code: 'InternalServerError' },
  query: { status: 500, code: 'InternalError' },
};

/**
 * Starts the server. `script` gives the reply for the n-th request (0-based); past its end the
 * last reply repeats.
 */
export async function startFakeAws(protocol: Protocol, script: readonly Reply[]): Promise<FakeAws> {
  const requests: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const reply = script[Math.min(requests.length, script.length - 1)]!;
      requests.push({
        method: req.method ?? '',
        path: req.url ?? '',
        attempt: String(req.headers['amz-sdk-request'] ?? ''),
        target: String(req.headers['x-amz-target'] ?? ''),
        body: Buffer.concat(chunks).toString('utf8'),
      });
      if (reply.kind === 'hang') return; // never answer: the client's timeout must fire
      if (reply.kind === 'ok') {
        write(res, reply.status ?? 200, protocol, typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body));
        return;
      }
      const { status, code } = reply.kind === 'throttle' ? THROTTLE[protocol] : SERVER_ERROR[protocol];
      const message = reply.kind === 'throttle' ? 'Rate exceeded' : 'We encountered an internal error. Please try again.';
      if (protocol === 'query') {
        write(res, status, protocol, `<ErrorResponse><Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`);
      } else if (protocol === 'rest-json') {
        res.setHeader('x-amzn-errortype', code);
        write(res, status, protocol, JSON.stringify({ message, Type: 'User' }));
      } else {
        res.setHeader('x-amzn-query-error', `${code};Sender`);
        write(res, status, protocol, JSON.stringify({ __type: `com.amazonaws#${code}`, message }));
      }
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function write(res: ServerResponse, status: number, protocol: Protocol, body: string): void {
  res.statusCode = status;
  res.setHeader('x-amzn-requestid', 'req-1');
  res.setHeader(
    'content-type',
    protocol === 'query' ? 'text/xml' : protocol === 'json' ? 'application/x-amz-json-1.0' : 'application/json',
  );
  res.end(body);
}
