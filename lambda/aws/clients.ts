/**
 * AWS SDK clients for the adapters and handlers.
 *
 * Handlers create their clients once at module scope with `clientConfig()`, so that a warm Lambda
 * reuses them (and their keep-alive connections) across invocations. This module imports no SDK
 * package: a handler's bundle loads only the SDK packages of the clients it creates
 * (`createAwsClients` in `all-clients.ts` creates every one, for the controller).
 *
 * Retries are the SDK's own: `maxAttempts` with the `standard` retry mode (exponential backoff with
 * full jitter and a retry-token bucket), which retries throttling errors, 5XX answers and
 * transient network errors such as timeouts.
 * Nothing in this project hand-writes a retry loop around an AWS call.
 */
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import type { SNSClient } from '@aws-sdk/client-sns';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** Options for the clients; the defaults are what the Lambda handlers use. */
export interface AwsClientOptions {
  /**
   * Total attempts per call (first try plus retries), handled by the SDK's retry strategy.
   * @default 4
   */
  readonly maxAttempts?: number;
  /**
   * The SDK's retry mode.
   *
   * `standard` is the default on purpose: `adaptive` adds a client-side rate limiter that, in a
   * fresh Lambda container, can fall to about one request every two seconds after a single
   * throttle, which would delay a rollback by many seconds.
   * @default 'standard'
   */
  readonly retryMode?: 'standard' | 'adaptive';
  /**
   * Maximum time to open a connection, in ms.
   * @default 2000
   */
  readonly connectionTimeoutMs?: number;
  /**
   * Maximum time for one attempt (request and response), in ms. A timed-out attempt fails with a
   * `TimeoutError`, which the retry strategy treats as transient. AWS API calls answer in well
   * under a second; 3 s per attempt keeps a tick's worst case (every call timing out and retried)
   * bounded while leaving room for slow answers.
   * @default 3000
   */
  readonly requestTimeoutMs?: number;
  /**
   * Region of every client.
   * @default - the SDK's own resolution (`AWS_REGION` in Lambda)
   */
  readonly region?: string;
  /**
   * One endpoint for every client (tests point it at a loopback server).
   * @default - the SDK's own resolution, including `AWS_ENDPOINT_URL_<SERVICE>` variables
   */
  readonly endpoint?: string;
  /**
   * Static credentials (tests against loopback servers only).
   * @default - the SDK's default credential chain (the function's role in Lambda)
   */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

/** The clients every adapter needs. */
export interface AwsClients {
  readonly lambda: LambdaClient;
  readonly cloudWatch: CloudWatchClient;
  readonly dynamoDb: DynamoDBClient;
  /** Document client over `dynamoDb` (plain JS values instead of attribute values). */
  readonly documents: DynamoDBDocumentClient;
  readonly sns: SNSClient;
  readonly eventBridge: EventBridgeClient;
}

export const DEFAULT_MAX_ATTEMPTS = 4;
export const DEFAULT_CONNECTION_TIMEOUT_MS = 2_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 3_000;

/** The configuration object shared by every client. */
export function clientConfig(options: AwsClientOptions = {}) {
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 10) {
    throw new RangeError(`maxAttempts must be a whole number from 1 to 10, got ${JSON.stringify(options.maxAttempts)}`);
  }
  const connectionTimeout = positive('connectionTimeoutMs', options.connectionTimeoutMs, DEFAULT_CONNECTION_TIMEOUT_MS);
  const requestTimeout = positive('requestTimeoutMs', options.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS);
  return {
    maxAttempts,
    retryMode: options.retryMode ?? 'standard',
    requestHandler: {
      connectionTimeout,
      requestTimeout,
      // Without this flag, newer SDKs only log a warning when requestTimeout passes and the call
      // can hang until the Lambda times out. Older SDKs (which the runtime may provide) treat
      // requestTimeout as a socket idle timeout that throws, so both bound every attempt.
      throwOnRequestTimeout: true,
    },
    ...(options.region !== undefined ? { region: options.region } : {}),
    ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
    ...(options.credentials !== undefined ? { credentials: { ...options.credentials } } : {}),
  };
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const result = value ?? fallback;
  if (!Number.isFinite(result) || result <= 0) {
    throw new RangeError(`${name} must be a positive number of milliseconds, got ${JSON.stringify(value)}`);
  }
  return result;
}

/** The `name` of an SDK error (or any error), for matching service exceptions across SDK versions. */
export function errorName(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined;
}

/** "Name: message" for logs and error messages. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
