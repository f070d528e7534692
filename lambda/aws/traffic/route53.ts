/**
 * TrafficPort on two Route 53 weighted records: one name and type (an A alias, a CNAME, …), the
 * old side's record and the new side's told apart by `SetIdentifier`.
 *
 * ## Locking: Route 53's own compare-and-swap
 * The revision is a hash of both records exactly as Route 53 lists them (weight, TTL, values or
 * alias target, health check, every other field). `setWeight` first re-reads them and refuses with
 * `RevisionConflictError` if that hash is not the expected revision. It then sends ONE change batch
 * that DELETEs both records exactly as read and CREATEs them with the new weights. Route 53 deletes a
 * record only when every value matches the current one, and applies a batch all or nothing, so a
 * record changed by anyone between our read and our write fails the whole batch with
 * `InvalidChangeBatch`: nothing is overwritten. We re-read and report a `RevisionConflictError` when
 * the records did change; when they did not, the batch was refused for another reason (a record-set
 * protection, invalid input) and that error is thrown as it is. `UPSERT` is never used: it would
 * overwrite blindly.
 *
 * ## Propagation: PENDING until INSYNC
 * A change batch is `PENDING` until every Route 53 name server answers with it (AWS: generally
 * within 60 s). `setWeight` polls `GetChange` until `INSYNC`, at most `propagationTimeoutMs`
 * (through the injected clock and sleep). A change still PENDING then is not an error: the
 * write is made, and the state says `settled: false`, so the core keeps the step `shifting` and
 * looks again on the next tick. Route 53 keeps no change status per record, so only the instance
 * that made a change knows its id: its `getWeight` asks `GetChange` once (no wait) while the records
 * still hold what it wrote. Another process reads `settled: true` from the records alone; the next
 * scheduled tick comes a minute later, past Route 53's documented propagation time.
 * `GetChange` failing (after the SDK's retries) is reported as `settled: false`, never thrown: the
 * write itself succeeded.
 *
 * INSYNC is not "every client moved": resolvers cache an answer for the record's TTL (some for
 * longer) and Keep-Alive connections stay where they are. `ensureTtl` lowers the TTL before the
 * first shift and says how long to wait out the old one; a step's bake should be several TTLs.
 *
 * ## Weights
 * Route 53 weights are integers 0–255 and a record's share is its weight over the sum. A whole
 * percentage p is written as old = 100 − p, new = p (see `shared.ts` for fractions). Weight 100 leaves
 * the old record at 0 (no answers while the new record is healthy; Route 53 falls back to weight-0
 * records only when every record with a weight above 0 is unhealthy). Both weights at 0 mean an even
 * split for Route 53 and read as 50 %. Other records of the same name and type with a weight above 0
 * would take a share we do not control: reading them is an `UnexpectedRoutingError`.
 */
import {
  ChangeResourceRecordSetsCommand,
  GetChangeCommand,
  ListResourceRecordSetsCommand,
  type ChangeInfo,
  type ResourceRecordSet,
  type Route53Client,
  type RRType,
} from '@aws-sdk/client-route-53';
import { RevisionConflictError, type Clock, type TrafficPort, type TrafficPreparation, type TrafficState } from '../../core/ports';
import { errorName } from '../clients';
import { UnexpectedRoutingError } from './alias';
import { contentRevision, exactWeights, percentOf, realSleep, requireText, wholeMs, type Sleep } from './shared';

/** Record types Route 53 accepts with weighted routing. */
export type WeightedRecordType = 'A' | 'AAAA' | 'CAA' | 'CNAME' | 'HTTPS' | 'MX' | 'NAPTR' | 'PTR' | 'SPF' | 'SRV' | 'SSHFP' | 'SVCB' | 'TLSA' | 'TXT';
const RECORD_TYPES: readonly string[] = ['A', 'AAAA', 'CAA', 'CNAME', 'HTTPS', 'MX', 'NAPTR', 'PTR', 'SPF', 'SRV', 'SSHFP', 'SVCB', 'TLSA', 'TXT'];

export interface Route53WeightedTrafficProps {
  /** Created once by the caller (`new Route53Client(clientConfig())`). */
  readonly route53: Route53Client;
  /** The hosted zone's id, `Z…` (a `/hostedzone/Z…` form is accepted). */
  readonly hostedZoneId: string;
  /** The records' name, e.g. `api.example.com` (a final dot is optional; case does not matter). */
  readonly recordName: string;
  readonly recordType: WeightedRecordType;
  /** `SetIdentifier` of the record that points at the old side. */
  readonly oldSetIdentifier: string;
  /** `SetIdentifier` of the record that points at the new side. */
  readonly newSetIdentifier: string;
  /**
   * Longest wait for a change to be INSYNC before `setWeight` returns `settled: false`.
   * Keep it well inside the controller's timeout (a tick may write several times).
   * @default 15_000
   */
  readonly propagationTimeoutMs?: number;
  /** @default 2_000 */
  readonly propagationPollMs?: number;
  /**
   * The longest TTL the records may have during the migration, in seconds. `prepare` (called by
   * the gate before the first shift) lowers a longer one and has the gate wait out the old TTL, so
   * that every resolver's cache honours the short one by the time traffic moves.
   * @default - the TTL is left as it is
   */
  readonly maxTtlSeconds?: number;
  /** @default - real timers */
  readonly sleep?: Sleep;
  /** @default - Date.now */
  readonly clock?: Clock;
}

/** What the Route 53 port reports besides the core's fields. */
export interface Route53TrafficState extends TrafficState {
  /**
   * The highest TTL of the two records, seconds; undefined when both are alias records (Route 53
   * then answers with the alias target's TTL, 60 s for ELB load balancers).
   */
  readonly ttlSeconds: number | undefined;
  /** The change this instance made, while known (`GetChange` id). */
  readonly changeId?: string;
}

/** What `ensureTtl` did. */
export interface TtlResult {
  /** True when the records were rewritten with a lower TTL. */
  readonly changed: boolean;
  /** The highest TTL before, seconds (undefined for alias records). */
  readonly previousTtlSeconds: number | undefined;
  /** The TTL now, seconds (undefined for alias records). */
  readonly ttlSeconds: number | undefined;
  /**
   * How long, from now, resolvers may still hold answers cached with the old TTL: the old TTL, plus
   * `PROPAGATION_ALLOWANCE_MS` when the change was not yet INSYNC. The first shift must wait it out.
   * 0 when nothing changed.
   */
  readonly waitMs: number;
  /** The records' state afterwards: its revision is the one the next `setWeight` must use. */
  readonly state: Route53TrafficState;
}

/** Route 53's documented propagation time ("generally within 60 seconds"). */
export const PROPAGATION_ALLOWANCE_MS = 60_000;
export const ROUTE53_MAX_WEIGHT = 255;
/** Pages of `ListResourceRecordSets` read before giving up (100 weighted records at most per set). */
const MAX_PAGES = 10;

interface Pair {
  readonly old: ResourceRecordSet;
  readonly new: ResourceRecordSet;
}

export class Route53WeightedTraffic implements TrafficPort {
  private readonly zoneId: string;
  private readonly name: string;
  private readonly timeoutMs: number;
  private readonly pollMs: number;
  private readonly sleep: Sleep;
  private readonly clock: Clock;
  /** The last change this instance made and the revision it wrote, until seen INSYNC. */
  private pending: { readonly changeId: string; readonly revision: string } | undefined;

  /** True when `percent` can be written exactly (validate plans with it before a migration). */
  static canExpress(percent: number): boolean {
    try {
      exactWeights(percent, ROUTE53_MAX_WEIGHT, 'Route 53');
      return true;
    } catch {
      return false;
    }
  }

  constructor(private readonly props: Route53WeightedTrafficProps) {
    const zone = requireText('hostedZoneId', props.hostedZoneId, /^(\/hostedzone\/)?[A-Z0-9]{1,32}$/, 'a hosted zone id such as "Z0123456789ABCDEFGHIJ"');
    this.zoneId = zone.replace(/^\/hostedzone\//, '');
    requireText('recordName', props.recordName, /^[^\s]{1,254}$/, 'a domain name such as "api.example.com"');
    this.name = normalizeName(props.recordName);
    if (!RECORD_TYPES.includes(props.recordType)) {
      throw new TypeError(`recordType must be one of ${RECORD_TYPES.join(', ')} (a type Route 53 can weight), got ${JSON.stringify(props.recordType)}`);
    }
    for (const key of ['oldSetIdentifier', 'newSetIdentifier'] as const) {
      requireText(key, props[key], /^.{1,128}$/s, "the record's SetIdentifier (1–128 characters)");
    }
    if (props.oldSetIdentifier === props.newSetIdentifier) {
      throw new TypeError(`oldSetIdentifier and newSetIdentifier must differ, both are ${JSON.stringify(props.oldSetIdentifier)}`);
    }
    this.timeoutMs = wholeMs('propagationTimeoutMs', props.propagationTimeoutMs, 15_000);
    this.pollMs = wholeMs('propagationPollMs', props.propagationPollMs, 2_000, 1);
    this.sleep = props.sleep ?? realSleep;
    this.clock = props.clock ?? { now: () => Date.now() };
    const max = props.maxTtlSeconds;
    if (max !== undefined && !(Number.isInteger(max) && max >= 0 && max <= 2_147_483_647)) {
      throw new RangeError(`maxTtlSeconds must be a whole number of seconds ≥ 0, got ${JSON.stringify(max)}`);
    }
  }

  async getWeight(): Promise<Route53TrafficState> {
    return this.stateOfRead(await this.readPair());
  }

  async setWeight(weight: number, expectedRevision: string): Promise<Route53TrafficState> {
    const target = exactWeights(weight, ROUTE53_MAX_WEIGHT, 'Route 53');
    const pair = await this.readCurrent(expectedRevision);
    if (pair.old.Weight === target.old && pair.new.Weight === target.new) {
      // Already there (a twin made this very change): nothing to write.
      return this.stateOfRead(pair);
    }
    return this.replace(pair, expectedRevision, (record, side) => ({ ...record, Weight: target[side] }), `weight ${weight}%`);
  }

  /**
   * Before the first shift: lowers the TTL to `maxTtlSeconds` (when set) and says how long to wait
   * out the old one. Idempotent: once lowered, it answers ready, and the core keeps the time to
   * wait until (`readyAtMs`) in the migration's record.
   */
  async prepare(): Promise<TrafficPreparation> {
    const max = this.props.maxTtlSeconds;
    if (max === undefined) return { ready: true, reason: 'TTL left as it is (no limit configured)' };
    const result = await this.ensureTtl(max);
    const name = this.props.recordName;
    if (result.changed) {
      return {
        ready: false,
        reason:
          `TTL of ${name} lowered from ${result.previousTtlSeconds} s to ${result.ttlSeconds} s before the first shift; ` +
          `waiting ${Math.ceil(result.waitMs / 1000)} s for answers cached with the old TTL to expire`,
        readyAtMs: this.clock.now() + result.waitMs,
      };
    }
    if (result.ttlSeconds === undefined) {
      return { ready: true, reason: `${name} is an alias record: resolvers cache it for its target's TTL (60 s for a load balancer)` };
    }
    return { ready: true, reason: `TTL of ${name} is ${result.ttlSeconds} s, within the limit of ${max} s` };
  }

  /**
   * Lowers the records' TTL to at most `maxTtlSeconds` (both records get the same TTL, as Route 53
   * expects of one weighted set; a TTL already below it is kept), with the same delete-and-create
   * batch as `setWeight`. Call it before the first shift, and wait `waitMs` before shifting.
   *
   * Alias records have no TTL of their own (Route 53 answers with the target's: 60 s for an ELB
   * load balancer, CloudFront or API Gateway; another record's TTL for an alias to a record in the
   * zone): they are left alone and reported with `ttlSeconds: undefined`, `waitMs: 0`.
   *
   * @param expectedRevision when given, refuse with `RevisionConflictError` if the records changed.
   */
  async ensureTtl(maxTtlSeconds: number, expectedRevision?: string): Promise<TtlResult> {
    if (!Number.isInteger(maxTtlSeconds) || maxTtlSeconds < 0 || maxTtlSeconds > 2_147_483_647) {
      throw new RangeError(`maxTtlSeconds must be a whole number of seconds ≥ 0, got ${JSON.stringify(maxTtlSeconds)}`);
    }
    const pair = expectedRevision === undefined ? await this.readPair() : await this.readCurrent(expectedRevision);
    const previous = ttlOf(pair);
    if (previous === undefined || previous <= maxTtlSeconds) {
      const state = await this.stateOfRead(pair);
      return { changed: false, previousTtlSeconds: previous, ttlSeconds: previous, waitMs: 0, state };
    }
    const ttls = [pair.old, pair.new].filter((r) => !r.AliasTarget).map((r) => r.TTL ?? 0);
    const ttl = Math.min(maxTtlSeconds, ...ttls);
    const state = await this.replace(pair, revisionOf(pair), (record) => (record.AliasTarget ? record : { ...record, TTL: ttl }), `TTL ${ttl}s`);
    const waitMs = previous * 1000 + (state.settled === false ? PROPAGATION_ALLOWANCE_MS : 0);
    return { changed: true, previousTtlSeconds: previous, ttlSeconds: ttl, waitMs, state };
  }

  /** Reads the pair and checks it against `expectedRevision`. */
  private async readCurrent(expectedRevision: string): Promise<Pair> {
    const pair = await this.readPair();
    const actual = revisionOf(pair);
    if (actual !== expectedRevision) throw new RevisionConflictError(expectedRevision, actual);
    return pair;
  }

  /** One batch: DELETE both records as read, CREATE both as `edit` makes them; then wait for INSYNC. */
  private async replace(
    pair: Pair,
    expectedRevision: string,
    edit: (record: ResourceRecordSet, side: 'old' | 'new') => ResourceRecordSet,
    what: string,
  ): Promise<Route53TrafficState> {
    const next: Pair = { old: edit(pair.old, 'old'), new: edit(pair.new, 'new') };
    let info: ChangeInfo | undefined;
    try {
      const out = await this.props.route53.send(
        new ChangeResourceRecordSetsCommand({
          HostedZoneId: this.zoneId,
          ChangeBatch: {
            Comment: `cutover: ${what} on ${this.props.recordName} ${this.props.recordType}`,
            Changes: [
              { Action: 'DELETE', ResourceRecordSet: pair.old },
              { Action: 'DELETE', ResourceRecordSet: pair.new },
              { Action: 'CREATE', ResourceRecordSet: next.old },
              { Action: 'CREATE', ResourceRecordSet: next.new },
            ],
          },
        }),
      );
      info = out.ChangeInfo;
    } catch (error) {
      if (errorName(error) !== 'InvalidChangeBatch') throw error;
      // Nothing was applied. A conflict only if the records really changed since we read them
      // (a record gone or no longer weighted counts); if the re-read fails, the original error.
      const now = await this.readPair().then(
        (again) => ({ changed: revisionOf(again) !== revisionOf(pair), revision: revisionOf(again) as string | undefined }),
        (readError: unknown) => (readError instanceof UnexpectedRoutingError ? { changed: true, revision: undefined } : undefined),
      );
      if (now?.changed) throw new RevisionConflictError(expectedRevision, now.revision);
      throw error;
    }
    if (!info?.Id) throw new UnexpectedRoutingError(`Route 53 accepted the change to ${this.where()} but returned no change id`);
    const settled = await this.waitInSync(info.Id, info.Status);
    // The revision of the records as written is the one the next read will give.
    this.pending = settled ? undefined : { changeId: info.Id, revision: revisionOf(next) };
    return this.stateOf(next, settled, settled ? undefined : info.Id);
  }

  /** Polls GetChange until INSYNC or the bound passes; false when still PENDING (or unreadable). */
  private async waitInSync(changeId: string, initial: string | undefined): Promise<boolean> {
    const deadline = this.clock.now() + this.timeoutMs;
    let status = initial;
    while (status !== 'INSYNC') {
      const left = deadline - this.clock.now();
      if (left <= 0) return false;
      await this.sleep(Math.min(this.pollMs, left));
      status = await this.changeStatus(changeId);
      if (status === undefined) return false;
    }
    return true;
  }

  /** The change's status, or undefined when it cannot be read (the write is made either way). */
  private async changeStatus(changeId: string): Promise<string | undefined> {
    try {
      const out = await this.props.route53.send(new GetChangeCommand({ Id: changeId }));
      return out.ChangeInfo?.Status;
    } catch {
      return undefined;
    }
  }

  /** Both records of the set, read across pages; checks that nothing else shares the traffic. */
  private async readPair(): Promise<Pair> {
    const { oldSetIdentifier, newSetIdentifier, recordType } = this.props;
    const found = new Map<string, ResourceRecordSet>();
    const strangers: string[] = [];
    let start: { name: string; type: RRType; id?: string | undefined } = { name: this.name, type: recordType };
    for (let page = 1; ; page++) {
      const out = await this.props.route53.send(
        new ListResourceRecordSetsCommand({
          HostedZoneId: this.zoneId,
          StartRecordName: start.name,
          StartRecordType: start.type,
          ...(start.id !== undefined ? { StartRecordIdentifier: start.id } : {}),
        }),
      );
      let past = false;
      for (const record of out.ResourceRecordSets ?? []) {
        // The list is sorted by name, then type: the first record of another name or type ends the set.
        if (normalizeName(record.Name ?? '') !== this.name || record.Type !== recordType) {
          past = true;
          break;
        }
        const id = record.SetIdentifier ?? '';
        if (id === oldSetIdentifier || id === newSetIdentifier) found.set(id, record);
        else if (record.Weight === undefined || record.Weight > 0) strangers.push(`${JSON.stringify(id)} (weight ${record.Weight ?? 'none'})`);
      }
      if (past || !out.IsTruncated || out.NextRecordName === undefined || out.NextRecordType === undefined) break;
      // The next page starts past our set: no need to read it.
      if (normalizeName(out.NextRecordName) !== this.name || out.NextRecordType !== recordType) break;
      if (page >= MAX_PAGES) throw new UnexpectedRoutingError(`${this.where()}: more than ${MAX_PAGES} pages of records, stopped reading`);
      start = { name: out.NextRecordName, type: out.NextRecordType, id: out.NextRecordIdentifier };
    }
    if (strangers.length > 0) {
      throw new UnexpectedRoutingError(
        `${this.where()} has other records that take traffic: ${strangers.join(', ')}; only ${JSON.stringify(oldSetIdentifier)} and ${JSON.stringify(newSetIdentifier)} may have a weight above 0`,
      );
    }
    const pick = (id: string): ResourceRecordSet => {
      const record = found.get(id);
      if (!record) {
        throw new UnexpectedRoutingError(
          `${this.where()} has no record with SetIdentifier ${JSON.stringify(id)}: create both weighted records (old ${JSON.stringify(oldSetIdentifier)}, new ${JSON.stringify(newSetIdentifier)}) before the migration`,
        );
      }
      if (record.Weight === undefined) {
        throw new UnexpectedRoutingError(`${this.where()}: the record ${JSON.stringify(id)} is not a weighted record (it has no Weight)`);
      }
      return record;
    };
    return { old: pick(oldSetIdentifier), new: pick(newSetIdentifier) };
  }

  /** The state of records just read: unsettled only while the change this instance made is PENDING. */
  private async stateOfRead(pair: Pair): Promise<Route53TrafficState> {
    const pending = this.pending;
    if (pending && pending.revision === revisionOf(pair)) {
      const status = await this.changeStatus(pending.changeId);
      if (status === 'INSYNC') this.pending = undefined;
      return this.stateOf(pair, status === 'INSYNC', status === 'INSYNC' ? undefined : pending.changeId);
    }
    this.pending = undefined;
    return this.stateOf(pair, true);
  }

  private stateOf(pair: Pair, settled: boolean, changeId?: string): Route53TrafficState {
    // Both at 0: Route 53 answers with each record as often (an even split).
    const weight = percentOf(pair.old.Weight ?? 0, pair.new.Weight ?? 0) ?? 50;
    return { weight, revision: revisionOf(pair), settled, ttlSeconds: ttlOf(pair), ...(changeId ? { changeId } : {}) };
  }

  private where(): string {
    return `Route 53 set ${this.props.recordName} ${this.props.recordType} in zone ${this.zoneId}`;
  }
}

/** The revision: a hash of both records exactly as Route 53 lists them. */
function revisionOf(pair: Pair): string {
  return contentRevision('r53', [pair.old, pair.new]);
}

function ttlOf(pair: Pair): number | undefined {
  const ttls = [pair.old, pair.new].filter((r) => !r.AliasTarget).map((r) => r.TTL ?? 0);
  return ttls.length > 0 ? Math.max(...ttls) : undefined;
}

/** Lower case, one final dot, and Route 53's octal escapes (`\052` for `*`) decoded. */
function normalizeName(name: string): string {
  const decoded = name.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
  return decoded.toLowerCase().replace(/\.?$/, '.');
}

