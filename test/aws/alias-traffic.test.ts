import { GetAliasCommand, LambdaClient, PreconditionFailedException, TooManyRequestsException, UpdateAliasCommand } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { LambdaAliasTraffic, UnexpectedRoutingError } from '../../lambda/aws/traffic/alias';
import { RevisionConflictError } from '../../lambda/core/ports';

const lambdaMock = mockClient(LambdaClient);
const lambda = new LambdaClient({ region: 'us-east-1' });
const traffic = new LambdaAliasTraffic({ lambda, functionName: 'api', aliasName: 'live', oldVersion: '4', newVersion: '5' });

afterEach(() => {
  lambdaMock.reset();
});

function alias(main: string, weights: Record<string, number> | undefined, revision = 'rev-1') {
  return { AliasArn: 'arn', Name: 'live', FunctionVersion: main, RevisionId: revision, ...(weights ? { RoutingConfig: { AdditionalVersionWeights: weights } } : {}) };
}

describe('LambdaAliasTraffic.getWeight', () => {
  it('should read the new version weight from AdditionalVersionWeights as a percentage', async () => {
    lambdaMock.on(GetAliasCommand, { FunctionName: 'api', Name: 'live' }).resolves(alias('4', { '5': 0.1 }));
    expect(await traffic.getWeight()).toEqual({ weight: 10, revision: 'rev-1', settled: true });
  });

  it('should read 0 when the alias points at the old version only, and 100 at the new one only', async () => {
    lambdaMock.on(GetAliasCommand).resolvesOnce(alias('4', undefined)).resolvesOnce(alias('5', {}));
    expect((await traffic.getWeight()).weight).toBe(0);
    expect((await traffic.getWeight()).weight).toBe(100);
  });

  it('should read the weight when the new version is main and the old one keeps a share', async () => {
    lambdaMock.on(GetAliasCommand).resolves(alias('5', { '4': 0.25 }));
    expect((await traffic.getWeight()).weight).toBe(75);
  });

  it('should round away float noise of the wire fraction', async () => {
    lambdaMock.on(GetAliasCommand).resolves(alias('4', { '5': 0.3 }));
    expect((await traffic.getWeight()).weight).toBe(30);
  });

  it('should fail loudly when the alias routes to a version outside the migration', async () => {
    lambdaMock.on(GetAliasCommand).resolvesOnce(alias('7', undefined)).resolvesOnce(alias('4', { '9': 0.5 }));
    await expect(traffic.getWeight()).rejects.toThrow(/points at version "7", neither the old \(4\) nor the new \(5\)/);
    await expect(traffic.getWeight()).rejects.toBeInstanceOf(UnexpectedRoutingError);
  });
});

describe('LambdaAliasTraffic.setWeight', () => {
  it('should send UpdateAlias with the RevisionId and the weight as a fraction', async () => {
    lambdaMock.on(UpdateAliasCommand).resolves(alias('4', { '5': 0.1 }, 'rev-2'));
    expect(await traffic.setWeight(10, 'rev-1')).toEqual({ weight: 10, revision: 'rev-2', settled: true });
    expect(lambdaMock.commandCalls(UpdateAliasCommand)[0]!.args[0].input).toEqual({
      FunctionName: 'api',
      Name: 'live',
      FunctionVersion: '4',
      RoutingConfig: { AdditionalVersionWeights: { '5': 0.1 } },
      RevisionId: 'rev-1',
    });
  });

  it('should promote at 100 by making the new version main with no extra weights', async () => {
    lambdaMock.on(UpdateAliasCommand).resolves(alias('5', {}, 'rev-3'));
    expect((await traffic.setWeight(100, 'rev-2')).weight).toBe(100);
    expect(lambdaMock.commandCalls(UpdateAliasCommand)[0]!.args[0].input).toMatchObject({
      FunctionVersion: '5',
      RoutingConfig: { AdditionalVersionWeights: {} },
      RevisionId: 'rev-2',
    });
  });

  it('should roll back at 0 by making the old version main with no extra weights', async () => {
    lambdaMock.on(UpdateAliasCommand).resolves(alias('4', {}, 'rev-4'));
    expect((await traffic.setWeight(0, 'rev-3')).weight).toBe(0);
    expect(lambdaMock.commandCalls(UpdateAliasCommand)[0]!.args[0].input).toMatchObject({
      FunctionVersion: '4',
      RoutingConfig: { AdditionalVersionWeights: {} },
    });
  });

  it('should report PreconditionFailedException as a RevisionConflictError with the current revision', async () => {
    lambdaMock
      .on(UpdateAliasCommand)
      .rejects(new PreconditionFailedException({ message: 'The RevisionId provided does not match the latest RevisionId', $metadata: { httpStatusCode: 412 } }));
    lambdaMock.on(GetAliasCommand).resolves(alias('4', { '5': 0.5 }, 'rev-other'));
    const attempt = traffic.setWeight(20, 'rev-1');
    await expect(attempt).rejects.toBeInstanceOf(RevisionConflictError);
    await expect(attempt).rejects.toThrow('expected rev-1, found rev-other');
  });

  it('should pass other failures through unchanged (after the SDK gave up retrying)', async () => {
    lambdaMock.on(UpdateAliasCommand).rejects(new TooManyRequestsException({ message: 'Rate exceeded', $metadata: { httpStatusCode: 429 } }));
    await expect(traffic.setWeight(20, 'rev-1')).rejects.toThrow(/Rate exceeded/);
  });

  it('fails when the weight is not a percentage', async () => {
    await expect(traffic.setWeight(101, 'r')).rejects.toThrow(/from 0 to 100, got 101/);
    await expect(traffic.setWeight(Number.NaN, 'r')).rejects.toThrow(RangeError);
    await expect(traffic.setWeight(1e-9, 'r')).rejects.toThrow(/finer than the alias routing can express/);
    expect(lambdaMock.commandCalls(UpdateAliasCommand)).toHaveLength(0);
  });

  it('fails when built with versions that cannot be routed', () => {
    expect(() => new LambdaAliasTraffic({ lambda, functionName: 'api', aliasName: 'live', oldVersion: '$LATEST', newVersion: '5' })).toThrow(/oldVersion must be a published version number, got "\$LATEST"/);
    expect(() => new LambdaAliasTraffic({ lambda, functionName: 'api', aliasName: 'live', oldVersion: '5', newVersion: '5' })).toThrow(/must differ/);
  });
});
