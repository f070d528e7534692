import {
  DeleteProvisionedConcurrencyConfigCommand,
  GetProvisionedConcurrencyConfigCommand,
  LambdaClient,
  ProvisionedConcurrencyConfigNotFoundException,
  PutProvisionedConcurrencyConfigCommand,
  ResourceConflictException,
  ServiceException,
} from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { ProvisionedConcurrencyCapacity } from '../../lambda/aws/capacity/provisioned-concurrency';

const lambdaMock = mockClient(LambdaClient);
const lambda = new LambdaClient({ region: 'us-east-1' });
const capacity = new ProvisionedConcurrencyCapacity({ lambda, functionName: 'api', version: '4' });
const notFound = () => new ProvisionedConcurrencyConfigNotFoundException({ message: 'No Provisioned Concurrency Config found', $metadata: {} });

afterEach(() => {
  lambdaMock.reset();
});

describe('ProvisionedConcurrencyCapacity', () => {
  it('should read the config on the old version itself (Qualifier = version number)', async () => {
    lambdaMock.on(GetProvisionedConcurrencyConfigCommand).resolves({
      RequestedProvisionedConcurrentExecutions: 20,
      AllocatedProvisionedConcurrentExecutions: 20,
      AvailableProvisionedConcurrentExecutions: 20,
      Status: 'READY',
    });
    expect(await capacity.read()).toEqual({ current: 20, pinned: 20, ready: true, detail: 'READY' });
    expect(lambdaMock.commandCalls(GetProvisionedConcurrencyConfigCommand)[0]!.args[0].input).toEqual({ FunctionName: 'api', Qualifier: '4' });
  });

  it('should report an allocation in progress or failed as not ready', async () => {
    lambdaMock
      .on(GetProvisionedConcurrencyConfigCommand)
      .resolvesOnce({ RequestedProvisionedConcurrentExecutions: 20, AllocatedProvisionedConcurrentExecutions: 5, Status: 'IN_PROGRESS' })
      .resolvesOnce({ RequestedProvisionedConcurrentExecutions: 20, AllocatedProvisionedConcurrentExecutions: 0, Status: 'FAILED', StatusReason: 'concurrency limit' });
    expect(await capacity.read()).toEqual({ current: 5, pinned: 20, ready: false, detail: 'IN_PROGRESS' });
    expect(await capacity.read()).toEqual({ current: 0, pinned: 20, ready: false, detail: 'FAILED: concurrency limit' });
  });

  it('should read "no pin" when the version has no config', async () => {
    lambdaMock.on(GetProvisionedConcurrencyConfigCommand).rejects(notFound());
    expect(await capacity.read()).toEqual({ current: 0, ready: false, detail: 'no provisioned concurrency configured' });
  });

  it('should pin with PutProvisionedConcurrencyConfig, and not write again when already pinned', async () => {
    lambdaMock.on(GetProvisionedConcurrencyConfigCommand).rejectsOnce(notFound()).resolves({
      RequestedProvisionedConcurrentExecutions: 20,
      AllocatedProvisionedConcurrentExecutions: 20,
      Status: 'READY',
    });
    lambdaMock.on(PutProvisionedConcurrencyConfigCommand).resolves({ RequestedProvisionedConcurrentExecutions: 20, AllocatedProvisionedConcurrentExecutions: 0, Status: 'IN_PROGRESS' });
    expect(await capacity.pin(20)).toEqual({ current: 0, pinned: 20, ready: false, detail: 'IN_PROGRESS' });
    expect(lambdaMock.commandCalls(PutProvisionedConcurrencyConfigCommand)[0]!.args[0].input).toEqual({
      FunctionName: 'api',
      Qualifier: '4',
      ProvisionedConcurrentExecutions: 20,
    });
    expect((await capacity.pin(20)).ready).toBe(true);
    expect(lambdaMock.commandCalls(PutProvisionedConcurrencyConfigCommand)).toHaveLength(1);
  });

  it('should restore a failed allocation but leave one in progress alone', async () => {
    lambdaMock
      .on(GetProvisionedConcurrencyConfigCommand)
      .resolvesOnce({ RequestedProvisionedConcurrentExecutions: 20, AllocatedProvisionedConcurrentExecutions: 3, Status: 'IN_PROGRESS' })
      .resolvesOnce({ RequestedProvisionedConcurrentExecutions: 20, AllocatedProvisionedConcurrentExecutions: 0, Status: 'FAILED' });
    lambdaMock.on(PutProvisionedConcurrencyConfigCommand).resolves({ RequestedProvisionedConcurrentExecutions: 20, Status: 'IN_PROGRESS' });
    expect((await capacity.restore(20)).detail).toBe('IN_PROGRESS');
    expect(lambdaMock.commandCalls(PutProvisionedConcurrencyConfigCommand)).toHaveLength(0);
    await capacity.restore(20);
    expect(lambdaMock.commandCalls(PutProvisionedConcurrencyConfigCommand)).toHaveLength(1);
  });

  it('should release with DeleteProvisionedConcurrencyConfig and treat "not found" as released', async () => {
    lambdaMock.on(DeleteProvisionedConcurrencyConfigCommand).resolvesOnce({}).rejectsOnce(notFound());
    expect(await capacity.release()).toEqual({ current: 0, ready: false, detail: 'released' });
    expect(await capacity.release()).toEqual({ current: 0, ready: false, detail: 'released' });
    expect(lambdaMock.commandCalls(DeleteProvisionedConcurrencyConfigCommand)[0]!.args[0].input).toEqual({ FunctionName: 'api', Qualifier: '4' });
  });

  it('should not mistake a service failure for "already released"', async () => {
    lambdaMock.on(DeleteProvisionedConcurrencyConfigCommand).rejects(new ServiceException({ message: 'internal', $metadata: { httpStatusCode: 500 } }));
    await expect(capacity.release()).rejects.toThrow('internal');
  });

  it('should surface a conflict from Lambda (e.g. the pin is on an alias already) unchanged', async () => {
    lambdaMock.on(GetProvisionedConcurrencyConfigCommand).rejects(notFound());
    lambdaMock.on(PutProvisionedConcurrencyConfigCommand).rejects(new ResourceConflictException({ message: 'Alias live already has a config', $metadata: {} }));
    await expect(capacity.pin(10)).rejects.toThrow(/already has a config/);
  });

  it('fails on a capacity that is not a positive whole number', async () => {
    await expect(capacity.pin(0)).rejects.toThrow(/whole number ≥ 1, got 0/);
    await expect(capacity.restore(2.5)).rejects.toThrow(/got 2.5/);
    expect(() => new ProvisionedConcurrencyCapacity({ lambda, functionName: 'api', version: 'live' })).toThrow(/published version number, got "live"/);
  });
});
