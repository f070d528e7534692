import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STATUS_CODES } from '../../lambda/aws/metrics';
import { DECISION_LOG_QUERY_LINES } from '../../lib/dashboard';
import { MIGRATION_STATUS_CODES } from '../../lib/metrics';
import { alarm, logicalId, minimalMigration, removeTestOutputs } from './fixtures';

/**
 * The dashboard body as JSON. Tokens (`{"Ref": …}`, `{"Fn::GetAtt": …}`) inside the body's
 * `Fn::Join` become `‹Ref:Id›` / `‹GetAtt:Id.Attr›`, which keeps the JSON valid and readable.
 */
function dashboardBody(template: Template): any {
  const dashboards = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
  expect(dashboards).toHaveLength(1);
  const body = dashboards[0]!.Properties.DashboardBody;
  const parts: unknown[] = typeof body === 'string' ? [body] : body['Fn::Join'][1];
  const text = parts
    .map((part: any) => {
      if (typeof part === 'string') return part;
      if (part.Ref) return `‹Ref:${part.Ref}›`;
      if (part['Fn::GetAtt']) return `‹GetAtt:${part['Fn::GetAtt'].join('.')}›`;
      throw new Error(`unexpected token in the dashboard body: ${JSON.stringify(part)}`);
    })
    .join('');
  return JSON.parse(text);
}

function widget(body: any, title: string): any {
  const found = body.widgets.filter((w: any) => w.properties.title === title);
  expect(found, `one widget titled ${title}`).toHaveLength(1);
  return found[0];
}

/** `[namespace, name, dim, value, …, options]` → { namespace, name, dims, options } */
function metricOf(row: unknown[]): { namespace: string; name: string; dims: Record<string, unknown>; options: any } {
  const options = typeof row[row.length - 1] === 'object' ? (row[row.length - 1] as any) : {};
  const plain = row.filter((x) => typeof x === 'string') as string[];
  const dims: Record<string, unknown> = {};
  for (let i = 2; i + 1 < plain.length; i += 2) dims[plain[i]!] = plain[i + 1];
  return { namespace: plain[0]!, name: plain[1]!, dims, options };
}


afterAll(removeTestOutputs);

describe('migration dashboard', () => {
  let body: any;
  let ids: { service: string; version: string; controllerLogs: string; alarm: string };

  beforeAll(() => {
    const { stack, fn, migration } = minimalMigration();
    // Added after the construct: the alarm widget must still list it.
    const late = alarm(stack, 'LateAlarm');
    migration.addAlarm(late);
    const template = Template.fromStack(stack);
    body = dashboardBody(template);
    ids = {
      service: logicalId(stack, fn),
      // From the template: `currentVersion` adds a hash of the code to its logical id at synth.
      version: Object.keys(template.findResources('AWS::Lambda::Version'))[0]!,
      controllerLogs: logicalId(stack, migration.controllerLogGroup),
      alarm: logicalId(stack, late),
    };
  });

  it('should hold every view the issue asks for', () => {
    const titles = body.widgets.map((w: any) => w.properties.title).filter(Boolean);
    expect(titles).toEqual(
      expect.arrayContaining([
        'Now',
        'Alarms watched by the migration',
        'Weight over time',
        'Invocations through the alias by version',
        '5XX rate, old vs new',
        '4XX rate, old vs new',
        'Latency p99 (Lambda Duration through the alias)',
        'Keep-Alive probe results by side',
        'Old version: provisioned concurrency vs pinned figure',
        'Decisions per minute',
        'Decision log (latest first)',
      ]),
    );
    expect(body.widgets.filter((w: any) => w.type === 'text')).toHaveLength(1);
  });

  it('should show current weight, step and status as single values', () => {
    const now = widget(body, 'Now');
    expect(now.properties.view).toBe('singleValue');
    const metrics = now.properties.metrics.map(metricOf);
    expect(metrics.map((m: any) => m.name)).toEqual(['Weight', 'Step', 'StatusCode']);
    for (const m of metrics) {
      expect(m.namespace).toBe('Cutover');
      expect(m.dims).toEqual({ Migration: `‹Ref:${ids.service}›:live` });
    }
  });

  it('should explain how to read it, with the status codes the controller publishes', () => {
    const text = body.widgets.find((w: any) => w.type === 'text').properties.markdown as string;
    expect(MIGRATION_STATUS_CODES).toEqual(STATUS_CODES);
    expect(text).toContain(STATUS_CODES.map((status, i) => `${i} ${status}`).join(', '));
    expect(text).toContain('How to read it');
    expect(text).toContain('10% 5m → 100% 5m');
  });

  it('should compare 5XX and 4XX rates of the new version with every other version', () => {
    for (const [title, metricName] of [
      ['5XX rate, old vs new', 'Errors5xx'],
      ['4XX rate, old vs new', 'Errors4xx'],
    ] as const) {
      const rows = widget(body, title).properties.metrics as unknown[][];
      const expressions = rows.filter((r) => r.length === 1).map((r) => (r[0] as any).expression as string);
      expect(expressions).toHaveLength(2);
      expect(expressions[0]).toBe('100 * FILL(errorsNew, 0) / requestsNew');
      const old = expressions[1]!;
      expect(old).toContain(`MetricName="${metricName}"`);
      expect(old).toContain(`FunctionName="‹Ref:${ids.service}›"`);
      expect(old).toContain(`NOT Version="‹GetAtt:${ids.version}.Version›"`);
      expect(old).toMatch(/^100 \* SUM\(SEARCH\('\{"Cutover\/App","FunctionName","Version"\}.*'Sum', 60\)\) \/ SUM\(SEARCH\(.*MetricName="Requests"/);
      const newSide = rows.filter((r) => r.length > 1).map(metricOf);
      expect(newSide.map((m) => [m.name, m.dims.Version, m.options.id])).toEqual([
        [metricName, `‹GetAtt:${ids.version}.Version›`, 'errorsNew'],
        ['Requests', `‹GetAtt:${ids.version}.Version›`, 'requestsNew'],
      ]);
    }
  });

  it('should compare latency p99 by ExecutedVersion through the alias', () => {
    const rows = widget(body, 'Latency p99 (Lambda Duration through the alias)').properties.metrics as unknown[][];
    const metric = metricOf(rows[0]!);
    expect(metric).toMatchObject({
      namespace: 'AWS/Lambda',
      name: 'Duration',
      dims: { FunctionName: `‹Ref:${ids.service}›`, Resource: `‹Ref:${ids.service}›:live`, ExecutedVersion: `‹GetAtt:${ids.version}.Version›` },
      options: { stat: 'p99' },
    });
    const search = (rows[1]![0] as any).expression as string;
    expect(search).toContain('MetricName="Duration"');
    expect(search).toContain(`NOT ExecutedVersion="‹GetAtt:${ids.version}.Version›"`);
    expect(search).toMatch(/'p99', 60\)$/);
  });

  it('should show probe results by side, and old capacity against the pin', () => {
    const rows = widget(body, 'Keep-Alive probe results by side').properties.metrics as unknown[][];
    const plain = rows.filter((row) => typeof row[0] === 'string').map(metricOf);
    expect(plain.map((m: any) => `${m.name}/${m.dims.Side}/${m.options.stat}${m.options.visible === false ? '/hidden' : ''}`).sort()).toEqual(
      [
        'ProbeDesync/new/Sum',
        'ProbeDesync/old/Sum',
        'ProbeInconclusive/new/Sum',
        'ProbeInconclusive/old/Sum',
        // The runs, for the ok count: ProbeDesync is sent on every run (ProbeOk is not sent).
        'ProbeDesync/new/SampleCount/hidden',
        'ProbeDesync/old/SampleCount/hidden',
      ].sort(),
    );
    const expressions = rows.filter((row) => typeof row[0] === 'object').map((row) => row[0] as { label: string; expression: string });
    expect(expressions.map((e) => [e.label, e.expression])).toEqual([
      ['ok (new)', 'runsNew - desyncNew - FILL(inconclusiveNew, 0)'],
      ['ok (old)', 'runsOld - desyncOld - FILL(inconclusiveOld, 0)'],
    ]);
    const capacity = widget(body, 'Old version: provisioned concurrency vs pinned figure').properties.metrics.map(metricOf);
    expect(capacity.map((m: any) => m.name)).toEqual(['OldCapacity', 'PinnedCapacity']);
  });

  it('should list the alarms, including one added after construction', () => {
    const alarms = widget(body, 'Alarms watched by the migration');
    expect(alarms.type).toBe('alarm');
    expect(alarms.properties.alarms).toEqual([`‹GetAtt:${ids.alarm}.Arn›`]);
  });

  it("should query the decision log with the contract query, narrowed to this migration's decisions", () => {
    const log = widget(body, 'Decision log (latest first)');
    expect(log.type).toBe('log');
    expect(log.properties.query).toBe(
      `SOURCE '‹Ref:${ids.controllerLogs}›' | fields @timestamp, status, weight, step, action, reason\n| filter message = "decision"\n| filter migrationId like /^‹Ref:${ids.service}›:live:/\n| sort @timestamp desc\n| limit 50`,
    );
    expect(DECISION_LOG_QUERY_LINES).toHaveLength(4);
    expect(log.properties.view).toBe('table');
  });

  it('should say that no alarm is attached instead of an empty alarm widget', () => {
    const { stack } = minimalMigration();
    const text = dashboardBody(Template.fromStack(stack)).widgets.filter((w: any) => w.type === 'text');
    expect(text).toHaveLength(2);
    expect(text[1].properties.markdown).toContain('none attached');
  });
});
