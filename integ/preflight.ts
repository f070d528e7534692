/**
 * Whether `npm run integ` may run here, decided before anything touches AWS: never in CI unless
 * asked for, and never without credentials. Both skips are one line on stdout and exit 0, so that a
 * contributor without an account (or a CI job that runs every script) sees why nothing happened.
 */
import { LambdaClient } from '@aws-sdk/client-lambda';

/** The environment variable that lets the test run where `CI` is set. */
export const OPT_IN_VARIABLE = 'CUTOVER_INTEG';

/** How long the credential chain may take (a profile's SSO token or an instance role can be slow). */
export const DEFAULT_CREDENTIALS_TIMEOUT_MS = 15_000;

/** What the preflight decided. */
export type Preflight =
  | { readonly run: true; readonly region: string }
  | { readonly run: false; readonly exitCode: number; readonly line: string };

/** Reads what the SDK's standard chains find (credentials, region); each may throw. */
export interface ChainResolvers {
  credentials(): Promise<{ readonly accessKeyId?: string }>;
  region(): Promise<string>;
}

export interface PreflightOptions {
  /** The process environment. */
  readonly env: NodeJS.ProcessEnv;
  /** @default - a Lambda client's own credential and region chains (`standardChains()`) */
  readonly resolvers?: ChainResolvers;
  /** @default DEFAULT_CREDENTIALS_TIMEOUT_MS */
  readonly timeoutMs?: number;
}

/**
 * The SDK's standard chains, as any client resolves them (environment, shared config and SSO
 * profiles, web identity, container and instance roles). A client of a package the repo already
 * depends on is used rather than STS, whose client is not a dependency: an unsigned client never
 * reaches the network to find its credentials, so nothing is sent to AWS here.
 */
export function standardChains(): ChainResolvers & { close(): void } {
  const client = new LambdaClient({});
  return {
    credentials: async () => client.config.credentials(),
    region: async () => client.config.region(),
    close: () => client.destroy(),
  };
}

/** True when `CI` is set to anything but an empty string or `false`/`0`. */
export function inCi(env: NodeJS.ProcessEnv): boolean {
  const ci = env.CI?.trim().toLowerCase();
  return ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0';
}

export async function preflight(options: PreflightOptions): Promise<Preflight> {
  const { env } = options;
  if (inCi(env) && env[OPT_IN_VARIABLE] !== '1') {
    return {
      run: false,
      exitCode: 0,
      line: `npm run integ: skipped in CI (it deploys to a real AWS account and costs money; set ${OPT_IN_VARIABLE}=1 to run it there).`,
    };
  }
  const owned = options.resolvers ? undefined : standardChains();
  const resolvers = options.resolvers ?? owned!;
  const timeoutMs = options.timeoutMs ?? DEFAULT_CREDENTIALS_TIMEOUT_MS;
  try {
    const found = await within(timeoutMs, resolvers.credentials()).catch(() => undefined);
    if (!found || !found.accessKeyId) {
      return {
        run: false,
        exitCode: 0,
        line:
          'npm run integ: no AWS credentials found (set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ' +
          'or run `aws sso login`; see docs/integ.md); skipped.',
      };
    }
    const region = await within(timeoutMs, resolvers.region()).catch(() => undefined);
    if (!region) {
      // Credentials mean somebody meant to run it: a missing region is a mistake to fix, not a skip.
      return {
        run: false,
        exitCode: 2,
        line: 'npm run integ: AWS credentials found but no region (set AWS_REGION, or a region in your profile); nothing deployed.',
      };
    }
    return { run: true, region };
  } finally {
    owned?.close();
  }
}

/** The promise's value, or a rejection after `ms` (the chain's instance-role lookup can hang). */
function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
