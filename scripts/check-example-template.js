#!/usr/bin/env node
// Checks the example app's synthesized template (scripts/test-example.sh runs it in the temporary
// app, with only Node): the three front doors on the migrated alias, the alias left to the deploy
// trigger, the app's own Durations in the plan and the health rules, and Cutover's functions
// loaded from the package's prebuilt bundles rather than bundled at synth.
// Usage: check-example-template.js <cdk.out folder>
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const outdir = process.argv[2];
if (!outdir) {
  process.stderr.write('usage: check-example-template.js <cdk.out folder>\n');
  process.exit(2);
}
const STACK = 'CutoverExample';
const template = JSON.parse(fs.readFileSync(path.join(outdir, `${STACK}.template.json`), 'utf8'));
const resources = Object.entries(template.Resources);
const failures = [];
const check = (ok, message) => {
  if (!ok) failures.push(message);
};
const ofType = (type) => resources.filter(([, r]) => r.Type === type);
const dependsOn = (resource) => [resource.DependsOn ?? []].flat();

const expectedCounts = {
  'AWS::ApiGateway::RestApi': 1,
  'AWS::ApiGatewayV2::Api': 1,
  'AWS::Lambda::Url': 1,
  'Custom::CutoverDeployTrigger': 1,
  // The deploy trigger creates the alias; an AWS::Lambda::Alias would fight the controller's weights.
  'AWS::Lambda::Alias': 0,
};
for (const [type, count] of Object.entries(expectedCounts)) {
  check(ofType(type).length === count, `${type}: expected ${count}, found ${ofType(type).length}`);
}

// Everything created against the alias waits for the trigger that creates it.
const [triggerId] = ofType('Custom::CutoverDeployTrigger')[0] ?? [];
for (const [id, resource] of [...ofType('AWS::Lambda::Url'), ...ofType('AWS::Lambda::Permission')]) {
  const onAlias = JSON.stringify(resource.Properties).includes(':live');
  if (onAlias) check(dependsOn(resource).includes(triggerId), `${id} (${resource.Type} on the alias) must depend on ${triggerId}`);
}

// The app's Durations, as the core reads them: every JSON string in the template is parsed.
const documents = [];
(function walk(value) {
  if (typeof value === 'string') {
    if (value.startsWith('{')) {
      try {
        documents.push(JSON.parse(value));
      } catch {
        // not JSON: a plain string
      }
    }
  } else if (value && typeof value === 'object') {
    for (const child of Object.values(value)) walk(child);
  }
})(template.Resources);
const plan = documents.find((d) => Array.isArray(d.steps) && 'soakMs' in d);
check(plan !== undefined, 'no plan (a JSON document with steps and soakMs) found in the template');
if (plan) {
  const steps = plan.steps.map((s) => `${s.weight}%/${s.bakeMs}ms`).join(' ');
  check(steps === '5%/240000ms 25%/240000ms 100%/120000ms', `plan steps: got ${steps}`);
  check(plan.soakMs === 900_000 && plan.healthWindowMs === 120_000, `plan soak/health window: got ${plan.soakMs}/${plan.healthWindowMs} ms`);
  check(plan.teardown === 'after-soak', `plan teardown: got ${plan.teardown}`);
}
const judge = documents.find((d) => 'maxHoldMs' in d);
check(judge?.maxHoldMs === 1_200_000 && judge?.latencyMarginMs === 80, `health rules: maxHoldMs/latencyMarginMs ${judge?.maxHoldMs}/${judge?.latencyMarginMs}, expected 1200000/80`);

// Cutover's functions: their assets are the package's prebuilt bundles, byte for byte.
const prebuilt = path.dirname(require.resolve('cutover/package.json', { paths: [process.cwd()] }));
const bundles = new Map(
  fs.readdirSync(path.join(prebuilt, 'dist', 'handlers')).map((name) => [fs.readFileSync(path.join(prebuilt, 'dist', 'handlers', name, 'index.js'), 'utf8'), name]),
);
const cutoverFunctions = ofType('AWS::Lambda::Function').filter(([, r]) => /^Cutover /.test(r.Properties.Description ?? ''));
check(cutoverFunctions.length >= 2, `expected Cutover's controller and deploy trigger, found ${cutoverFunctions.length} Cutover functions`);
for (const [id, resource] of cutoverFunctions) {
  const asset = resource.Metadata?.['aws:asset:path'];
  const code = asset && fs.existsSync(path.join(outdir, asset, 'index.js')) ? fs.readFileSync(path.join(outdir, asset, 'index.js'), 'utf8') : undefined;
  check(code !== undefined && bundles.has(code), `${id}: its asset ${asset} is not one of the package's prebuilt handlers`);
  check(resource.Properties.Handler === 'index.handler', `${id}: handler ${resource.Properties.Handler}`);
}

if (failures.length > 0) {
  process.stderr.write(`check-example-template: ${failures.length} problem(s) in ${STACK}:\n${failures.map((f) => `  - ${f}`).join('\n')}\n`);
  process.exit(1);
}
process.stdout.write(
  `check-example-template: ${resources.length} resources; REST API, HTTP API and function URL on the alias after the trigger; ` +
    `the app's plan and health rules; ${cutoverFunctions.length} Cutover functions from prebuilt bundles\n`,
);
