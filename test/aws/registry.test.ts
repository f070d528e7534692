/**
 * The migration registry over the wire (dynalite): settings checked on the way in and out, the
 * live mark's conditions (a newer migration's mark is never cleared; a mark needs a registration),
 * deregistration kept while live, damaged items reported apart, and the per-migration environment.
 */
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  DamagedRegistrationError,
  LiveMarkChangedError,
  MigrationRegistry,
  PER_MIGRATION_SETTINGS,
  REGISTRY_PK,
  SettingsError,
  checkSettings,
  familyOf,
  migrationEnvironment,
} from '../../lambda/aws/registry';
import { startDynalite, type LocalDynamo } from './helpers';

let dynamo: LocalDynamo;
let table = 0;
let registry: MigrationRegistry;
let tableName: string;

beforeAll(async () => {
  dynamo = await startDynalite();
});
afterAll(async () => {
  await dynamo.close();
});
beforeEach(async () => {
  tableName = `registry-${++table}`;
  await dynamo.createTable(tableName);
  registry = new MigrationRegistry({ documents: dynamo.clients.documents, tableName });
});

const ALIAS = { CUTOVER_FUNCTION_NAME: 'api', CUTOVER_ALIAS_NAME: 'live', CUTOVER_PLAN: '{"steps":[]}' };
const FLEET = { CUTOVER_TARGET: '{"kind":"dns","recordName":"api.example.com"}', CUTOVER_PLAN: '{"steps":[]}' };

describe('settings', () => {
  it('should accept known names with string values only, naming the first bad one', () => {
    expect(checkSettings(ALIAS)).toEqual(ALIAS);
    expect(() => checkSettings({ CUTOVER_TABLE_NAME: 'other' })).toThrow(/"CUTOVER_TABLE_NAME" is not a per-migration setting/);
    expect(() => checkSettings({ CUTOVER_PLAN: 3 })).toThrow(/CUTOVER_PLAN must be a string, got 3/);
    expect(() => checkSettings('x')).toThrow(SettingsError);
    expect(() => checkSettings([])).toThrow(/must be a map/);
  });

  it('should tell the family from the target kind', () => {
    expect(familyOf({})).toBe('lambda-alias');
    expect(familyOf({ CUTOVER_TARGET: '{"kind":"lambda-alias"}' })).toBe('lambda-alias');
    expect(familyOf({ CUTOVER_TARGET: '{"kind":"load-balancer"}' })).toBe('fleet');
    expect(familyOf(FLEET)).toBe('fleet');
    expect(() => familyOf({ CUTOVER_TARGET: '{"kind":"ftp"}' })).toThrow(/unknown kind "ftp"/);
    expect(() => familyOf({ CUTOVER_TARGET: '{' })).toThrow(/must be JSON/);
  });

  it("should give a migration's reader the function's shared environment with only its own settings", () => {
    const env = { CUTOVER_TABLE_NAME: 't', CUTOVER_PROBE_TARGETS: '[leftover]', CUTOVER_PLAN: 'stale', PATH: '/bin' };
    const merged = migrationEnvironment(env, { migrationKey: 'api:live', settings: ALIAS });
    expect(merged).toEqual({ CUTOVER_TABLE_NAME: 't', PATH: '/bin', ...ALIAS, CUTOVER_MIGRATION_KEY: 'api:live' });
    expect(PER_MIGRATION_SETTINGS).not.toContain('CUTOVER_TABLE_NAME');
  });
});

describe('registry items', () => {
  it('should register, list live ones first (oldest mark first) and keep the mark across a new registration', async () => {
    await registry.register('b:live', ALIAS, 1);
    await registry.register('a:live', ALIAS, 1);
    await registry.register('shop', FLEET, 1);
    await registry.markLive('shop', 'shop:r2', 100);
    await registry.markLive('b:live', 'b:live:3', 200);
    await registry.register('shop', { ...FLEET, CUTOVER_ALARM_NAMES: '["x"]' }, 300);
    const { migrations, damaged } = await registry.list();
    expect(damaged).toEqual([]);
    expect(migrations.map((m) => [m.migrationKey, m.family, m.live?.migrationId])).toEqual([
      ['shop', 'fleet', 'shop:r2'],
      ['b:live', 'lambda-alias', 'b:live:3'],
      ['a:live', 'lambda-alias', undefined],
    ]);
    expect(migrations[0]!.settings.CUTOVER_ALARM_NAMES).toBe('["x"]');
    expect(migrations[0]!.updatedAtMs).toBe(300);
  });

  it('should refuse to register bad settings', async () => {
    await expect(registry.register('a:live', { CUTOVER_EVENT_BUS_NAME: 'x' }, 1)).rejects.toThrow(SettingsError);
    expect(await registry.get('a:live')).toBeUndefined();
  });

  it('should keep the first mark time when the same migration is marked again, and restart it for a new one', async () => {
    await registry.register('a:live', ALIAS, 1);
    await registry.markLive('a:live', 'a:live:2', 100);
    await registry.markLive('a:live', 'a:live:2', 500);
    expect((await registry.get('a:live'))!.live).toEqual({ migrationId: 'a:live:2', sinceMs: 100 });
    await registry.markLive('a:live', 'a:live:3', 600);
    expect((await registry.get('a:live'))!.live).toEqual({ migrationId: 'a:live:3', sinceMs: 600 });
  });

  it("should mark over only the mark the caller read (expected), never over a newer deploy's", async () => {
    await registry.register('a:live', ALIAS, 1);
    // The controller read no mark; a deploy marked v3 since: v2 is not written over it.
    await registry.markLive('a:live', 'a:live:3', 100);
    await expect(registry.markLive('a:live', 'a:live:2', 200, { expected: null })).rejects.toThrow(LiveMarkChangedError);
    // It read v1's mark; a deploy marked v3 since: kept too, and the error names the mark found.
    await expect(registry.markLive('a:live', 'a:live:2', 200, { expected: 'a:live:1' })).rejects.toMatchObject({ name: 'LiveMarkChangedError', current: 'a:live:3' });
    expect((await registry.get('a:live'))!.live).toEqual({ migrationId: 'a:live:3', sinceMs: 100 });
    // Over the mark it read: written.
    await registry.markLive('a:live', 'a:live:4', 300, { expected: 'a:live:3' });
    expect((await registry.get('a:live'))!.live).toEqual({ migrationId: 'a:live:4', sinceMs: 300 });
    // Already marked for the same migration: nothing to do, its first time kept.
    await registry.markLive('a:live', 'a:live:4', 400, { expected: 'a:live:1' });
    await registry.markLive('a:live', 'a:live:4', 400, { expected: null });
    expect((await registry.get('a:live'))!.live).toEqual({ migrationId: 'a:live:4', sinceMs: 300 });
    // A mark cleared since the read is no newer deploy's: written (the migration needs ticks).
    await registry.clearLive('a:live', 'a:live:4');
    await registry.markLive('a:live', 'a:live:5', 500, { expected: 'a:live:4' });
    expect((await registry.get('a:live'))!.live).toEqual({ migrationId: 'a:live:5', sinceMs: 500 });
    await registry.clearLive('a:live', 'a:live:5');
    await registry.markLive('a:live', 'a:live:6', 600, { expected: null });
    expect((await registry.get('a:live'))!.live).toEqual({ migrationId: 'a:live:6', sinceMs: 600 });
    // Without `expected` (the deploy trigger, whose migration is the newest): over any other mark.
    await registry.markLive('a:live', 'a:live:7', 700);
    expect((await registry.get('a:live'))!.live).toEqual({ migrationId: 'a:live:7', sinceMs: 700 });
    await expect(registry.markLive('ghost:live', 'ghost:live:1', 1, { expected: null })).rejects.toThrow(DamagedRegistrationError);
  });

  it('should refuse to mark an unregistered migration live', async () => {
    await expect(registry.markLive('ghost:live', 'ghost:live:1', 1)).rejects.toThrow(DamagedRegistrationError);
  });

  it("should clear only the migration's own mark, never a newer deploy's", async () => {
    await registry.register('a:live', ALIAS, 1);
    await registry.markLive('a:live', 'a:live:3', 100);
    expect(await registry.clearLive('a:live', 'a:live:2')).toBe(false);
    expect((await registry.get('a:live'))!.live?.migrationId).toBe('a:live:3');
    expect(await registry.clearLive('a:live', 'a:live:3')).toBe(true);
    expect((await registry.get('a:live'))!.live).toBeUndefined();
    expect(await registry.clearLive('a:live', 'a:live:3')).toBe(false);
  });

  it('should keep a live migration registered when its resource is deleted, and delete it once over', async () => {
    await registry.register('a:live', ALIAS, 1);
    await registry.markLive('a:live', 'a:live:3', 100);
    expect(await registry.deregister('a:live')).toBe('kept-live');
    expect(await registry.get('a:live')).toBeDefined();
    await registry.clearLive('a:live', 'a:live:3');
    expect(await registry.deregister('a:live')).toBe('deleted');
    expect(await registry.deregister('a:live')).toBe('absent');
  });

  it("should remove a registration only once no resource that registered it is left (a move, and a move rolled back)", async () => {
    await registry.register('a:live', ALIAS, 1, 'stack/Old');
    await registry.register('a:live', ALIAS, 2, 'stack/New');
    expect((await registry.get('a:live'))!.owners).toEqual(['stack/New', 'stack/Old']);
    // The move: the old resource's Delete leaves the new one's registration.
    expect(await registry.deregister('a:live', 'stack/Old')).toBe('kept-other-owner');
    expect((await registry.get('a:live'))!.owners).toEqual(['stack/New']);
    // A move rolled back: the new resource's Delete leaves the old one's.
    await registry.register('a:live', ALIAS, 3, 'stack/Old');
    expect(await registry.deregister('a:live', 'stack/New')).toBe('kept-other-owner');
    expect(await registry.deregister('a:live', 'stack/Old')).toBe('deleted');
    expect(await registry.deregister('a:live', 'stack/Old')).toBe('absent');
    // Registered with no owner: any Delete of its key removes it.
    await registry.register('b:live', ALIAS, 1);
    expect(await registry.deregister('b:live', 'stack/Any')).toBe('deleted');
  });

  it('should keep a live registration whose last owner left until the caller settled it', async () => {
    await registry.register('c:live', ALIAS, 1, 'stack/Only');
    await registry.markLive('c:live', 'c:live:2', 5);
    expect(await registry.deregister('c:live', 'stack/Only')).toBe('kept-live');
    expect(await registry.get('c:live')).toMatchObject({ live: { migrationId: 'c:live:2' } });
    expect(await registry.deregister('c:live', 'stack/Only', { evenIfLive: true })).toBe('deleted');
  });

  it('should report damaged items apart, with their live mark, and fail a direct read of one', async () => {
    await registry.register('good:live', ALIAS, 1);
    const put = (item: Record<string, unknown>) => dynamo.clients.documents.send(new PutCommand({ TableName: tableName, Item: { pk: REGISTRY_PK, ...item } }));
    await put({ sk: 'no-settings', updatedAtMs: 1, live: { migrationId: 'no-settings:r1', sinceMs: 5 } });
    await put({ sk: 'bad-value', settings: { CUTOVER_PLAN: 7 }, updatedAtMs: 1 });
    await put({ sk: 'unknown-name', settings: { CUTOVER_TOPIC_ARN: 'x' }, updatedAtMs: 1 });
    await put({ sk: 'bad-target', settings: { CUTOVER_TARGET: '{"kind":"ftp"}' }, updatedAtMs: 1 });
    const { migrations, damaged } = await registry.list();
    expect(migrations.map((m) => m.migrationKey)).toEqual(['good:live']);
    expect(damaged.map((d) => d.migrationKey).sort()).toEqual(['bad-target', 'bad-value', 'no-settings', 'unknown-name']);
    expect(damaged.find((d) => d.migrationKey === 'no-settings')).toMatchObject({ liveMigrationId: 'no-settings:r1', problem: expect.stringMatching(/settings/) });
    expect(damaged.find((d) => d.migrationKey === 'bad-value')!.problem).toMatch(/CUTOVER_PLAN must be a string/);
    await expect(registry.get('bad-value')).rejects.toThrow(/registry item of bad-value is damaged: .*deploy the stack again/);
  });

  it('should read every page of a large registry', async () => {
    const paged = new MigrationRegistry({ documents: dynamo.clients.documents, tableName, maxPages: 50 });
    const big = 'x'.repeat(30_000);
    for (let i = 0; i < 40; i++) await registry.register(`m${String(i).padStart(2, '0')}`, { CUTOVER_PLAN: big }, 1);
    const { migrations } = await paged.list();
    expect(migrations).toHaveLength(40);
    const tooFew = new MigrationRegistry({ documents: dynamo.clients.documents, tableName, maxPages: 1 });
    await expect(tooFew.list()).rejects.toThrow(/more than 1 pages/);
  });
});
